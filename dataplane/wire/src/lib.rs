//! Checked, zero-copy packet views and parse/emit representations for the protocols palisade sees.
