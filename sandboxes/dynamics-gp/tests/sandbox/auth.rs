//! NTLM bound to the connection, Negotiate, SBA Basic, and curl as an independent client.

use crate::common;

use common::*;
use ntlm::http::Scheme;
use sandbox_dynamics_gp::SandboxConfig;

#[tokio::test]
async fn unauthenticated_requests_get_a_bare_ntlm_challenge() {
    let sandbox = start().await;
    let mut conn = Conn::connect(addr(&sandbox)).await.unwrap();
    let r = conn.send("GET", &format!("{SOAP_PATH}?wsdl"), &[], "").await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.all("www-authenticate"), ["NTLM"], "the legacy WSDL's policy is NTLM only");
    // The connection stays usable after a 401.
    let r = conn.send("GET", "/GPService/Tenants(DefaultTenant)/help", &[], "").await.unwrap();
    assert_eq!(r.status, 401);
    let log = sandbox.admin().requests();
    assert!(log.iter().all(|e| e.status == 401 && e.user.is_none()));
}

#[tokio::test]
async fn handshake_on_one_connection_then_the_connection_stays_authenticated() {
    let sandbox = start().await;
    let mut conn = Conn::connect(addr(&sandbox)).await.unwrap();
    let body = envelope("GetCompanyList", "<gp:criteria/>", None, "Transactional");
    let action = format!("\"{GP}/GetCompanyList\"");
    let headers = [("Content-Type", "text/xml; charset=utf-8"), ("SOAPAction", action.as_str())];
    let r = conn.ntlm(&mut default_client(), Scheme::Ntlm, false, "POST", SOAP_PATH, &headers, &body).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Fabrikam, Inc."));
    // Later requests on the same connection need no Authorization header.
    for _ in 0..3 {
        let again = conn.send("POST", SOAP_PATH, &headers, &body).await.unwrap();
        assert_eq!(again.status, 200);
    }
    // A new connection is not authenticated.
    let mut other = Conn::connect(addr(&sandbox)).await.unwrap();
    assert_eq!(other.send("POST", SOAP_PATH, &headers, &body).await.unwrap().status, 401);
    let log = sandbox.admin().requests();
    assert_eq!(log.iter().filter(|e| e.status == 200).count(), 4);
    assert!(log.iter().filter(|e| e.status == 200).all(|e| e.user.as_deref() == Some("GPDOMAIN\\gpuser")));
    // The NEGOTIATE leg carried the same body and was answered 401 (logged with its action).
    assert_eq!(log[0].status, 401);
    assert_eq!(log[0].action, "GetCompanyList");
}

#[tokio::test]
async fn wrong_password_is_401_again() {
    let sandbox = start().await;
    let mut conn = Conn::connect(addr(&sandbox)).await.unwrap();
    let mut client = ntlm::Client::new("GPDOMAIN", "gpuser", "wrong");
    let r = conn.ntlm(&mut client, Scheme::Ntlm, false, "GET", &format!("{SOAP_PATH}?wsdl"), &[], "").await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.all("www-authenticate"), ["NTLM"]);
    // Unknown user and unknown domain too.
    for (d, u) in [("GPDOMAIN", "nobody"), ("OTHERDOM", "gpuser")] {
        let mut client = ntlm::Client::new(d, u, "Passw0rd!");
        let r =
            conn.ntlm(&mut client, Scheme::Ntlm, false, "GET", &format!("{SOAP_PATH}?wsdl"), &[], "").await.unwrap();
        assert_eq!(r.status, 401, "{d}\\{u}");
    }
    // And the same connection can still authenticate properly afterwards.
    let r = conn
        .ntlm(&mut default_client(), Scheme::Ntlm, false, "GET", &format!("{SOAP_PATH}?wsdl"), &[], "")
        .await
        .unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn type3_on_another_connection_fails() {
    let sandbox = start().await;
    let mut first = Conn::connect(addr(&sandbox)).await.unwrap();
    let mut client = default_client();
    let leg1 = ntlm::http::authorization(Scheme::Ntlm, &client.negotiate(), false);
    let r = first.send("GET", &format!("{SOAP_PATH}?wsdl"), &[("Authorization", &leg1)], "").await.unwrap();
    assert_eq!(r.status, 401);
    let challenge = ntlm::http::find_challenge(r.all("www-authenticate"), Scheme::Ntlm).unwrap();
    let leg3 = ntlm::http::authorization(Scheme::Ntlm, &client.authenticate(&challenge.ntlm).unwrap(), false);
    let mut second = Conn::connect(addr(&sandbox)).await.unwrap();
    let r = second.send("GET", &format!("{SOAP_PATH}?wsdl"), &[("Authorization", &leg3)], "").await.unwrap();
    assert_eq!(r.status, 401, "the CHALLENGE belongs to the first connection");
    // On its own connection the CHALLENGE is still pending, so the same AUTHENTICATE works there.
    let r = first.send("GET", &format!("{SOAP_PATH}?wsdl"), &[("Authorization", &leg3)], "").await.unwrap();
    assert_eq!(r.status, 200, "the first connection still holds its CHALLENGE");
    let r = first.send("GET", &format!("{SOAP_PATH}?wsdl"), &[("Authorization", &leg3)], "").await.unwrap();
    assert_eq!(r.status, 401, "a CHALLENGE is answered once");
}

#[tokio::test]
async fn negotiate_raw_and_spnego_when_configured() {
    let off = start().await;
    let mut conn = Conn::connect(addr(&off)).await.unwrap();
    let leg1 = ntlm::http::authorization(Scheme::Negotiate, &default_client().negotiate(), false);
    let r = conn.send("GET", &format!("{SOAP_PATH}?wsdl"), &[("Authorization", &leg1)], "").await.unwrap();
    assert_eq!((r.status, r.all("www-authenticate")), (401, vec!["NTLM"]), "Negotiate is off by default");

    let on = start_with(SandboxConfig { negotiate: true, ..SandboxConfig::default() }).await;
    let mut conn = Conn::connect(addr(&on)).await.unwrap();
    let r = conn.send("GET", &format!("{SOAP_PATH}?wsdl"), &[], "").await.unwrap();
    assert_eq!(r.all("www-authenticate"), ["Negotiate", "NTLM"]);
    for spnego in [false, true] {
        let mut conn = Conn::connect(addr(&on)).await.unwrap();
        let r = conn
            .ntlm(&mut default_client(), Scheme::Negotiate, spnego, "GET", &format!("{SOAP_PATH}?wsdl"), &[], "")
            .await
            .unwrap();
        assert_eq!(r.status, 200, "spnego={spnego}");
        assert_eq!(r.header("www-authenticate").is_some(), spnego, "SPNEGO gets an accept-completed token");
    }
}

#[tokio::test]
async fn basic_only_on_sba_and_only_when_configured() {
    use base64::Engine as _;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("GPDOMAIN\\gpuser:Passw0rd!"));
    let wrong = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("GPDOMAIN\\gpuser:nope"));
    let help = "/GPService/Tenants(DefaultTenant)/help";

    let off = start().await;
    let mut conn = Conn::connect(addr(&off)).await.unwrap();
    assert_eq!(conn.send("GET", help, &[("Authorization", &basic)], "").await.unwrap().status, 401);

    let on = start_with(SandboxConfig { basic_for_sba: true, ..SandboxConfig::default() }).await;
    let mut conn = Conn::connect(addr(&on)).await.unwrap();
    let r = conn.send("GET", help, &[], "").await.unwrap();
    assert_eq!(r.status, 401);
    assert!(r.all("www-authenticate").iter().any(|v| v.starts_with("Basic realm=")));
    assert_eq!(conn.send("GET", help, &[("Authorization", &basic)], "").await.unwrap().status, 200);
    assert_eq!(conn.send("GET", help, &[("Authorization", &wrong)], "").await.unwrap().status, 401);
    // Basic does not authenticate the connection.
    assert_eq!(conn.send("GET", help, &[], "").await.unwrap().status, 401);
    // Never on SOAP.
    let r = conn.send("GET", &format!("{SOAP_PATH}?wsdl"), &[("Authorization", &basic)], "").await.unwrap();
    assert_eq!(r.status, 401);
    assert!(!r.all("www-authenticate").iter().any(|v| v.starts_with("Basic")));
}

#[tokio::test]
async fn additional_accounts_from_the_config() {
    let config = SandboxConfig {
        users: vec![
            ("GPDOMAIN".into(), "gpuser".into(), "Passw0rd!".into()),
            ("CONTOSO".into(), "ann".into(), "S3cret!".into()),
        ],
        ..SandboxConfig::default()
    };
    let sandbox = start_with(config).await;
    let mut conn = Conn::connect(addr(&sandbox)).await.unwrap();
    let mut ann = ntlm::Client::new("CONTOSO", "ann", "S3cret!");
    let r = conn.ntlm(&mut ann, Scheme::Ntlm, false, "GET", &format!("{SOAP_PATH}?wsdl"), &[], "").await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(sandbox.admin().requests().last().unwrap().user.as_deref(), Some("CONTOSO\\ann"));
}

/// curl is an independent NTLM client (OEM NEGOTIATE, no MIC). Skipped when curl is missing.
#[tokio::test]
async fn curl_ntlm_authenticates() {
    let sandbox = start().await;
    let body = envelope("GetCompanyList", "<gp:criteria/>", None, "Transactional");
    let run = |password: &'static str| {
        let url = sandbox.soap_url();
        let body = body.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("curl")
                .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--ntlm", "-u"])
                .arg(format!("GPDOMAIN\\gpuser:{password}"))
                .args(["-H", "Content-Type: text/xml; charset=utf-8"])
                .args(["-H", "SOAPAction: \"http://schemas.microsoft.com/dynamics/gp/2006/01/GetCompanyList\""])
                .args(["--data-binary", &body, &url])
                .output()
        })
    };
    let output = match run("Passw0rd!").await.unwrap() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("curl not on PATH; skipping the curl interop check");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.trim_end().ends_with("200"), "curl --ntlm: {text}");
    assert!(text.contains("Fabrikam, Inc."));
    let wrong = run("Passw0rd?").await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&wrong.stdout).trim_end().ends_with("401"));
    // Both handshakes happened on one connection each: NEGOTIATE 401, then the request.
    let statuses: Vec<u16> = sandbox.admin().requests().iter().map(|e| e.status).collect();
    assert_eq!(statuses, [401, 200, 401, 401]);
}
