//! Ports for the stack's processes, chosen below the kernel's ephemeral range.
//!
//! A process that is stopped and started again (a fault test's kill, a province that comes back)
//! must find its port free: its callers, its links and its peers were given that port. A port the
//! kernel hands out for port 0 lies in the ephemeral range, the one every outgoing connection on
//! the machine takes its local port from; while the process is down, any database or NATS
//! connection may take it, and the restart fails with "address already in use". Ports below that
//! range are never given to outgoing connections, so a port chosen there stays the process's own.

use rand::Rng;

/// The lowest port chosen.
const FLOOR: u16 = 10_000;

/// A port on 127.0.0.1 free now, below the ephemeral range, chosen at random (so that two stacks
/// starting at once rarely try the same one); 0 (the kernel chooses) when that range leaves no
/// room below it.
pub fn unused_port() -> u16 {
    let low = ephemeral_low().unwrap_or(32_768);
    if low <= FLOOR.saturating_add(1_000) {
        return 0;
    }
    let mut rng = rand::thread_rng();
    for _ in 0..1_000 {
        let port = rng.gen_range(FLOOR..low);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    0
}

/// The first port of the kernel's ephemeral range (`net.ipv4.ip_local_port_range`).
fn ephemeral_low() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_free_and_below_the_ephemeral_range() {
        let port = unused_port();
        assert_ne!(port, 0, "this machine's ephemeral range leaves room below it");
        assert!(port >= FLOOR && port < ephemeral_low().unwrap_or(32_768), "{port}");
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("free");
        assert_eq!(listener.local_addr().unwrap().port(), port);
    }
}
