//! `dynamics-gp-sandbox [--port PORT] [--seed FILE] [--user 'DOMAIN\user:password']...
//! [--negotiate] [--basic-for-sba] [--tenant NAME]`: runs the sandbox until Ctrl-C.

use sandbox_dynamics_gp::SandboxConfig;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut port, mut seed, mut users, mut config) = (0u16, None, Vec::new(), SandboxConfig::default());
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| std::io::Error::other(format!("{name} needs a value")));
        match arg.as_str() {
            "--port" => port = value("--port")?.parse().map_err(|_| std::io::Error::other("--port needs a number"))?,
            "--seed" => seed = Some(value("--seed")?.into()),
            "--user" => users.push(value("--user")?),
            "--tenant" => config.tenant = value("--tenant")?,
            "--negotiate" => config.negotiate = true,
            "--basic-for-sba" => config.basic_for_sba = true,
            other => {
                return Err(std::io::Error::other(format!(
                    "unknown argument {other}; usage: --port PORT --seed FILE --user 'DOMAIN\\user:password' --negotiate --basic-for-sba --tenant NAME"
                )));
            }
        }
    }
    if !users.is_empty() {
        config.users = sandbox_dynamics_gp::parse_accounts(&users)?;
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(sandbox_dynamics_gp::run_with(config, port, seed))
}
