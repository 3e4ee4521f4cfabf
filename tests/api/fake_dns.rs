//! A real DNS server on loopback for the doctor's SPF/DKIM/DMARC rows:
//! hickory-server answering from an in-memory zone over UDP and TCP on one
//! port bound at 0, exactly as an authoritative server on the internet
//! would (NXDOMAIN, NOERROR without records, REFUSED outside its zone).
//!
//! [`FakeDns::servfail`] answers every question with SERVFAIL, and
//! [`FakeDns::silent`] holds the port and never answers (a dead server).
//! Dropping a [`FakeDns`] stops it.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use hickory_server::{
    Server,
    net::runtime::{Time, TokioRuntimeProvider},
    proto::{
        op::{Header, ResponseCode},
        rr::{LowerName, Name},
        serialize::txt::Parser,
    },
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo},
    store::in_memory::InMemoryZoneHandler,
    zone_handler::{AxfrPolicy, Catalog, MessageResponseBuilder, ZoneType},
};
use tokio::net::{TcpListener, UdpSocket};

pub struct FakeDns {
    pub addr: SocketAddr,
    _running: Running,
}

/// Held, never read: dropping it stops the server.
#[allow(dead_code)]
enum Running {
    Zone(Server<Catalog>),
    ServFail(Server<ServFail>),
    Silent(UdpSocket, TcpListener),
}

impl FakeDns {
    /// Authoritative for `origin`, serving `records` (zone-file lines
    /// relative to it) under a generated SOA.
    pub async fn serve(origin: &str, records: &str) -> Self {
        let text = format!(
            "$ORIGIN {origin}.\n$TTL 300\n\
             @ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 300\n\
             @ IN NS ns.{origin}.\n{records}\n"
        );
        let origin_name = Name::from_ascii(format!("{origin}.")).unwrap();
        let (origin_name, zone) = Parser::new(text, None, Some(origin_name))
            .parse()
            .expect("a valid test zone");
        let handler = InMemoryZoneHandler::<TokioRuntimeProvider>::new(
            origin_name.clone(),
            zone,
            ZoneType::Primary,
            AxfrPolicy::Deny,
        )
        .expect("a zone with an SOA");
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin_name), vec![Arc::new(handler)]);
        let mut server = Server::new(catalog);
        let (udp, tcp) = bind().await;
        let addr = udp.local_addr().unwrap();
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 4096);
        Self {
            addr,
            _running: Running::Zone(server),
        }
    }

    /// Answers every question with SERVFAIL.
    pub async fn servfail() -> Self {
        let mut server = Server::new(ServFail);
        let (udp, tcp) = bind().await;
        let addr = udp.local_addr().unwrap();
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 4096);
        Self {
            addr,
            _running: Running::ServFail(server),
        }
    }

    /// Holds the port and never answers.
    pub async fn silent() -> Self {
        let (udp, tcp) = bind().await;
        Self {
            addr: udp.local_addr().unwrap(),
            _running: Running::Silent(udp, tcp),
        }
    }

    /// `ip:port`, as `WARMLINE__DNS__NAMESERVER` takes it.
    pub fn nameserver(&self) -> String {
        self.addr.to_string()
    }
}

/// A UDP socket on 127.0.0.1:0 and a TCP listener on the same port (the
/// resolver falls back to TCP on the server's port). Another process may
/// hold that TCP port; then take another.
async fn bind() -> (UdpSocket, TcpListener) {
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = udp.local_addr().unwrap().port();
        if let Ok(tcp) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            return (udp, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

/// A server that fails every question, as a broken recursive resolver does.
pub struct ServFail;

#[async_trait::async_trait]
impl RequestHandler for ServFail {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let response = MessageResponseBuilder::new(&request.queries, None)
            .error_msg(&request.metadata, ResponseCode::ServFail);
        match response_handle.send_response(response).await {
            Ok(info) => info,
            // The client went away; there is nobody to tell.
            Err(_) => {
                let mut metadata = request.metadata;
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: Default::default(),
                })
            }
        }
    }
}
