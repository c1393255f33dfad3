//! The claim arithmetic of [`super`] against the varint widths it stands for.

use super::*;

#[test]
fn fetch_add_amount_is_the_claim_at_every_offset_delta_width() {
    let mut fixed = 0;
    for base_body in 0..(FETCH_ADD_MAX + 16) {
        let exact = |w: usize| varint::varint_len((base_body + w) as i32) + base_body;
        match fetch_add_amount(base_body) {
            Some(amount) => {
                assert!((1..=4).all(|w| exact(w) == amount), "base body {base_body}: {amount}");
                assert!(amount <= FETCH_ADD_MAX);
                fixed += 1;
            }
            // Only where the width moves, or near the fetch_add bound.
            None => assert!(exact(1) != exact(4) || base_body + 8 > FETCH_ADD_MAX, "base body {base_body}"),
        }
    }
    assert!(fixed > FETCH_ADD_MAX - 16);
}

#[test]
fn offset_widths_sum_the_offset_delta_varint_widths() {
    let mut sum = 0;
    for count in 0..=COUNT_MASK {
        assert_eq!(offset_widths(count), sum, "count {count}");
        let width = varint::varint_len(count as i32);
        assert_eq!(offset_width(count), width, "count {count}");
        sum += width as u64;
    }
}
