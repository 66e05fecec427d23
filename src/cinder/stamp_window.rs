//! What a stored `updated_at` says of the service's clock. cinder sends microseconds
//! and the `services` table keeps whole seconds, so a stamp `u` only places the
//! service's clock reading somewhere in a window `[u + from, u + to)`. Which window
//! depends on how the database kept the second (cut or rounded): `database` decides
//! that from the server it reads; the estimators here only consume the window.

/// `updated_at` keeps whole seconds: cinder may see a heartbeat up to this much older
/// than it is.
pub(super) const STAMP_RESOLUTION: f64 = 1.0;

/// Where the service's clock stood, relative to the whole-second `updated_at` the
/// database kept of it: somewhere in `[stamp + from, stamp + to)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StampWindow {
    pub from: f64,
    pub to: f64,
}

impl StampWindow {
    /// The fraction is cut.
    pub const TRUNCATED: StampWindow = StampWindow { from: 0.0, to: 1.0 };
    /// Rounded to the nearest second.
    pub const ROUNDED: StampWindow = StampWindow {
        from: -0.5,
        to: 0.5,
    };
    /// Either of the two: the bound then holds whichever the writer used.
    pub const EITHER: StampWindow = StampWindow {
        from: -0.5,
        to: 1.0,
    };
}
