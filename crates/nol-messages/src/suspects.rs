//! The messages of suspects.

use crate::catalogue;

catalogue! {
    pub enum Suspect {
        /// Removed once the area's first message lands.
        Unused => "", "";
    }
}
