//! A tiny HTTP/1.1 client over one TCP connection (NTLM needs the connection, which reqwest
//! hides), plus SOAP envelope builders.

#![allow(dead_code)]

use std::net::SocketAddr;

use sandbox_dynamics_gp::{DEFAULT_DOMAIN, DEFAULT_PASSWORD, DEFAULT_USER, Sandbox, SandboxConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub const GP: &str = "http://schemas.microsoft.com/dynamics/gp/2006/01";
pub const D: &str = "http://schemas.microsoft.com/dynamics/2006/01";
pub const SOAP_PATH: &str = "/DynamicsGPWebServices/DynamicsGPService.asmx";

pub async fn start() -> Sandbox {
    start_with(SandboxConfig::default()).await
}

pub async fn start_with(config: SandboxConfig) -> Sandbox {
    Sandbox::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

pub fn addr(sandbox: &Sandbox) -> SocketAddr {
    sandbox.base_url().trim_start_matches("http://").parse().unwrap()
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

/// One keep-alive connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
        Ok(Conn { reader: BufReader::new(TcpStream::connect(addr).await?) })
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<Resp> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: gpserver\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        self.read_response(method == "HEAD").await
    }

    async fn read_response(&mut self, head_only: bool) -> std::io::Result<Resp> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let get = |name: &str| {
            headers.iter().find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if head_only {
        } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                line.clear();
                self.reader.read_line(&mut line).await?;
                let size = usize::from_str_radix(line.trim(), 16).map_err(std::io::Error::other)?;
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).await?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(len) = get("content-length") {
            let mut buf = vec![0; len.parse().unwrap()];
            self.reader.read_exact(&mut buf).await?;
            body = buf;
        }
        Ok(Resp { status, headers, body: String::from_utf8(body).unwrap() })
    }

    /// The three NTLM legs for one request: NEGOTIATE (→ 401 + CHALLENGE), AUTHENTICATE with the
    /// real request. Returns the final response. (Many arguments: it is a whole HTTP request.)
    #[allow(clippy::too_many_arguments)]
    pub async fn ntlm(
        &mut self,
        client: &mut ntlm::Client,
        scheme: ntlm::http::Scheme,
        spnego: bool,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<Resp> {
        let leg1 = ntlm::http::authorization(scheme, &client.negotiate(), spnego);
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        h.push(("Authorization", &leg1));
        let challenge = self.send(method, path, &h, body).await?;
        assert_eq!(challenge.status, 401, "{challenge:?}");
        let token = ntlm::http::find_challenge(challenge.all("www-authenticate"), scheme)
            .unwrap_or_else(|| panic!("no {scheme:?} challenge in {:?}", challenge.headers));
        assert_eq!(token.spnego, spnego);
        let leg3 = ntlm::http::authorization(scheme, &client.authenticate(&token.ntlm).unwrap(), spnego);
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        h.push(("Authorization", &leg3));
        self.send(method, path, &h, body).await
    }
}

pub fn default_client() -> ntlm::Client {
    ntlm::Client::new(DEFAULT_DOMAIN, DEFAULT_USER, DEFAULT_PASSWORD)
}

/// A connection authenticated with the default account (by a GET of the WSDL).
pub async fn authed(sandbox: &Sandbox) -> Conn {
    let mut conn = Conn::connect(addr(sandbox)).await.unwrap();
    let r = conn
        .ntlm(&mut default_client(), ntlm::http::Scheme::Ntlm, false, "GET", &format!("{SOAP_PATH}?wsdl"), &[], "")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    conn
}

/// A SOAP request on an authenticated connection.
pub async fn soap(conn: &mut Conn, operation: &str, envelope: &str) -> Resp {
    let action = format!("\"{GP}/{operation}\"");
    conn.send("POST", SOAP_PATH, &[("Content-Type", "text/xml; charset=utf-8"), ("SOAPAction", &action)], envelope)
        .await
        .unwrap()
}

/// An envelope around `<gp:op>{args}<gp:context>…</gp:context></gp:op>`.
pub fn envelope(operation: &str, args: &str, company: Option<i32>, currency: &str) -> String {
    let org = company
        .map(|id| format!(r#"<d:OrganizationKey xsi:type="d:CompanyKey"><d:Id>{id}</d:Id></d:OrganizationKey>"#))
        .unwrap_or_default();
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" "#,
            r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:gp="{gp}" xmlns:d="{d}"><soap:Body>"#,
            "<gp:{op}>{args}<gp:context>{org}<d:CurrencyType>{currency}</d:CurrencyType></gp:context></gp:{op}>",
            "</soap:Body></soap:Envelope>"
        ),
        gp = GP,
        d = D,
        op = operation,
        args = args,
        org = org,
        currency = currency
    )
}

/// A strictly valid `BetweenRestrictionOfNullableOfDateTime` with one member set.
pub fn date_restriction(element: &str, member: &str, value: &str) -> String {
    let mut s = format!("<gp:{element}>");
    for m in ["EqualValue", "NotEqualValue", "From", "To", "GreaterThan", "LessThan"] {
        if m == member {
            s.push_str(&format!("<gp:{m}>{value}</gp:{m}>"));
        } else {
            s.push_str(&format!(r#"<gp:{m} xsi:nil="true"/>"#));
        }
    }
    s.push_str(&format!("</gp:{element}>"));
    s
}

/// Texts of every element with this local name (namespace-aware parse).
pub fn texts(body: &str, local: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(body).unwrap();
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == local)
        .map(|n| n.children().filter_map(|c| c.text()).collect())
        .collect()
}

/// The ids of the records of a list response (`<Record><Key><Id>…`), in order.
pub fn keys(body: &str, record: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(body).unwrap();
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == record && n.tag_name().namespace() == Some(GP))
        .map(|n| {
            let key = n.children().find(|c| c.tag_name().name() == "Key").unwrap();
            key.children().find(|c| c.tag_name().name() == "Id").and_then(|c| c.text()).unwrap_or("").to_string()
        })
        .collect()
}

/// The first element with this local name inside the record whose key is `id`.
pub fn field(body: &str, record: &str, id: &str, local: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(body).unwrap();
    let rec = doc.descendants().find(|n| {
        n.is_element()
            && n.tag_name().name() == record
            && n.children()
                .find(|c| c.tag_name().name() == "Key")
                .and_then(|k| k.children().find(|c| c.tag_name().name() == "Id"))
                .and_then(|c| c.text())
                == Some(id)
    })?;
    rec.descendants()
        .find(|n| n.is_element() && n.tag_name().name() == local)
        .map(|n| n.children().filter_map(|c| c.text()).collect())
}
