//! `s3kit`: the test server, the fault proxy and the raw-GET baseline as commands, for the object
//! storage benchmark (design doc, section 12.4). Machine output is one JSON line on stdout; `serve`
//! and `proxy` run until killed or until their stdin closes.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use s3kit::{raw, Options, Proxy, Server};
use serde_json::json;

const USAGE: &str = "\
usage:
  s3kit serve --root DIR [--port P] [--page N] [--bucket B]... [--no-auth]
  s3kit proxy --upstream HOST:PORT [--latency-ms N] [--port P]
  s3kit get-ranges --endpoint URL --bucket B --ranges FILE.json [--concurrency C]

serve and proxy print one JSON line ({\"endpoint\": ...}) and run until stdin closes.
get-ranges reads [{\"key\": K, \"start\": S, \"end\": E}, ...] (E exclusive), needs a server
started with --no-auth, and prints {\"seconds\": F, \"bytes\": N, \"requests\": N}.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Usage(msg)) => {
            eprintln!("s3kit: {msg}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Error::Io(err)) => {
            eprintln!("s3kit: {err}");
            ExitCode::from(1)
        }
    }
}

enum Error {
    Usage(String),
    Io(io::Error),
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        Error::Io(err)
    }
}

/// `--name value` pairs and bare `--flag`s after the subcommand.
struct Flags(Vec<(String, Option<String>)>);

impl Flags {
    fn parse(args: &[String], bools: &[&str]) -> Result<Flags, Error> {
        let mut out = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(Error::Usage(format!("unexpected argument {arg:?}")));
            };
            if bools.contains(&name) {
                out.push((name.to_owned(), None));
            } else {
                let value = it
                    .next()
                    .ok_or_else(|| Error::Usage(format!("--{name} needs a value")))?;
                out.push((name.to_owned(), Some(value.clone())));
            }
        }
        Ok(Flags(out))
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.all(name).last().copied()
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    fn need(&self, name: &str) -> Result<&str, Error> {
        self.get(name)
            .ok_or_else(|| Error::Usage(format!("--{name} is required")))
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, Error> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| Error::Usage(format!("--{name}: not a number: {v:?}"))),
        }
    }

    fn check(&self, known: &[&str]) -> Result<(), Error> {
        match self.0.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            Some((n, _)) => Err(Error::Usage(format!("unknown option --{n}"))),
            None => Ok(()),
        }
    }
}

fn run(args: &[String]) -> Result<(), Error> {
    let Some((command, rest)) = args.split_first() else {
        return Err(Error::Usage("missing command".into()));
    };
    match command.as_str() {
        "serve" => serve(&Flags::parse(rest, &["no-auth"])?),
        "proxy" => proxy(&Flags::parse(rest, &[])?),
        "get-ranges" => get_ranges(&Flags::parse(rest, &[])?),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(Error::Usage(format!("unknown command {other:?}"))),
    }
}

fn serve(flags: &Flags) -> Result<(), Error> {
    flags.check(&["root", "port", "page", "bucket", "no-auth"])?;
    let defaults = Options::default();
    let opts = Options {
        root: Some(PathBuf::from(flags.need("root")?)),
        page: flags.num("page", defaults.page)?,
        auth: if flags.has("no-auth") {
            None
        } else {
            defaults.auth
        },
        port: flags.num("port", 0)?,
    };
    let server = Server::start(opts)?;
    for bucket in flags.all("bucket") {
        server.bucket_dir(bucket);
    }
    let env = server.env();
    let key = env
        .iter()
        .find(|(k, _)| *k == "AWS_ACCESS_KEY_ID")
        .map(|(_, v)| v.clone());
    let secret = env
        .iter()
        .find(|(k, _)| *k == "AWS_SECRET_ACCESS_KEY")
        .map(|(_, v)| v.clone());
    let (key, secret) = if flags.has("no-auth") {
        (None, None)
    } else {
        (key, secret)
    };
    println!(
        "{}",
        json!({ "endpoint": server.endpoint(), "key": key, "secret": secret })
    );
    wait_for_stdin()
}

fn proxy(flags: &Flags) -> Result<(), Error> {
    flags.check(&["upstream", "latency-ms", "port"])?;
    let upstream = raw::addr_of(flags.need("upstream")?)?;
    let latency = Duration::from_millis(flags.num("latency-ms", 0)?);
    let proxy = Proxy::start_on(flags.num("port", 0)?, upstream, Vec::new(), latency)?;
    println!("{}", json!({ "endpoint": proxy.endpoint() }));
    wait_for_stdin()
}

fn get_ranges(flags: &Flags) -> Result<(), Error> {
    flags.check(&["endpoint", "bucket", "ranges", "concurrency"])?;
    let addr = raw::addr_of(flags.need("endpoint")?)?;
    let path = flags.need("ranges")?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("reading {path}: {e}")))?;
    let ranges = raw::parse_ranges(&text)?;
    let report = raw::get_ranges(
        addr,
        flags.need("bucket")?,
        &ranges,
        flags.num("concurrency", 1)?,
    )?;
    println!(
        "{}",
        json!({ "seconds": report.seconds, "bytes": report.bytes, "requests": report.requests })
    );
    Ok(())
}

/// Blocks until stdin reaches its end (the parent closed it or exited).
fn wait_for_stdin() -> Result<(), Error> {
    io::copy(&mut io::stdin().lock(), &mut io::sink())?;
    Ok(())
}
