//! The messages of transfer.

use crate::catalogue;

catalogue! {
    pub enum Transfer {
        /// Removed once the area's first message lands.
        Unused => "", "";
    }
}
