//! `business-central-sandbox [--port PORT] [--seed FILE]`: runs the sandbox until Ctrl-C.

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut port, mut seed) = (0u16, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| std::io::Error::other("--port needs a number"))?;
            }
            "--seed" => seed = Some(args.next().ok_or_else(|| std::io::Error::other("--seed needs a file"))?.into()),
            other => {
                return Err(std::io::Error::other(format!("unknown argument {other}; usage: --port PORT --seed FILE")));
            }
        }
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(sandbox_business_central::run_cli(port, seed))
}
