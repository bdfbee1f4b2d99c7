//! The messages of supervision.

use crate::catalogue;

catalogue! {
    pub enum Supervision {
        /// Removed once the area's first message lands.
        Unused => "", "";
    }
}
