//! The messages of cases.

use crate::catalogue;

catalogue! {
    pub enum Case {
        /// Removed once the area's first message lands.
        Unused => "", "";
    }
}
