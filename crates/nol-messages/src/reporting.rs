//! The messages of reporting.

use crate::catalogue;

catalogue! {
    pub enum Reporting {
        /// Removed once the area's first message lands.
        Unused => "", "";
    }
}
