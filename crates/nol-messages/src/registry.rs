//! The messages of registry.

use crate::catalogue;

catalogue! {
    pub enum Registry {
        /// Removed once the area's first message lands.
        Unused => "", "";
    }
}
