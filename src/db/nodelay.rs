//! Turns off Nagle's algorithm on PostgreSQL TCP connections.
//!
//! Why: sqlx 0.9.0 stopped setting `TCP_NODELAY` on its sockets (upstream
//! issue transact-rs/sqlx#4335, fixed by #4336 but not yet released). With
//! Nagle on, a request whose last packet is small waits for the server's
//! delayed ACK: about 40 ms on Linux. Measured here: every dispatcher query
//! carrying a batch of ids took ~50 ms over TCP against ~5 ms over the Unix
//! socket, which capped PostgreSQL dispatch at 7,600 messages/s. libpq (and
//! so psql) always sets `TCP_NODELAY`.
//!
//! How: sqlx does not expose its socket, so after each new connection we
//! ask the server which client port it sees (`inet_client_port()`, NULL on
//! a Unix socket), find this process's TCP socket with that local port and
//! the server's port as its peer, and set the option on it. Looking at a
//! descriptor only reads its addresses; setting the option on a socket
//! never changes what it carries, so a descriptor closed and reused
//! meanwhile comes to no harm. Linux only (it reads `/proc/self/fd`);
//! elsewhere it does nothing. Remove once sqlx sets the option again.

use sea_orm::sqlx::{self, PgConnection};

/// The `after_connect` hook for the PostgreSQL pool. Never fails the
/// connection: without the option everything still works, only slower.
pub async fn disable_nagle(conn: &mut PgConnection) {
    let ports: Result<(Option<i32>, Option<i32>), _> =
        sqlx::query_as("SELECT inet_client_port(), inet_server_port()")
            .fetch_one(&mut *conn)
            .await;
    match ports {
        Ok((Some(client), Some(server))) => {
            if !set_nodelay_on(client as u16, server as u16) {
                tracing::debug!(client, server, "no socket found to set TCP_NODELAY on");
            }
        }
        Ok(_) => {} // a Unix socket: no Nagle
        Err(e) => tracing::debug!(error = %e, "cannot read the connection's ports"),
    }
}

/// Sets `TCP_NODELAY` on the process's TCP socket from local port `local`
/// to remote port `remote`; false when none was found.
#[cfg(target_os = "linux")]
fn set_nodelay_on(local: u16, remote: u16) -> bool {
    use std::os::fd::{BorrowedFd, RawFd};
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        // SAFETY: the descriptor is only borrowed for the calls below, which
        // read its addresses and set a socket option; on a descriptor that
        // is not a socket (or was closed meanwhile) they fail harmlessly.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&borrowed);
        let port = |a: std::io::Result<socket2::SockAddr>| {
            a.ok().and_then(|a| a.as_socket()).map(|a| a.port())
        };
        if port(sock.local_addr()) == Some(local) && port(sock.peer_addr()) == Some(remote) {
            return sock.set_tcp_nodelay(true).is_ok();
        }
    }
    false
}

#[cfg(not(target_os = "linux"))]
fn set_nodelay_on(_local: u16, _remote: u16) -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn finds_a_connected_socket_by_its_ports_and_sets_the_option() {
        // Arrange: a real loopback connection, Nagle on by default.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap();
        assert!(!client.nodelay().unwrap());
        let local = client.local_addr().unwrap().port();
        let remote = listener.local_addr().unwrap().port();

        // Act
        let found = set_nodelay_on(local, remote);

        // Assert
        assert!(found);
        assert!(client.nodelay().unwrap());
        assert!(!set_nodelay_on(remote, remote.wrapping_add(1)));
    }
}
