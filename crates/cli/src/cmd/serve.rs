//! `baleen serve OUTPUT…`: built systems over HTTP (and TFTP) for machines that boot from the
//! network, with an iPXE script per system.

use anyhow::Context;
use baleen_netboot::http::{HttpLimits, HttpServer};
use baleen_netboot::ipxe::{self, Netboot};
use baleen_netboot::tftp::{TftpLimits, TftpServer};
use baleen_netboot::{Catalog, Log, Served};
use baleen_run::BootSource;
use clap::Args;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const AFTER_HELP: &str = "\
Each OUTPUT (what `baleen run` boots) is served under its own file names, at the root, as
`linuxkit serve --directory out` serves a build directory, plus NAME.ipxe, an iPXE script that
boots it (kernel, initrd and command line; `chain` for a UKI; `sanboot` for an ISO or raw disk,
read by ranges). Only those files are served: no listing, no other path.

The script's URL goes on stdout, one per system (and its tftp:// URL with --tftp); point a
machine's iPXE at it (DHCP boot file, or `chain URL` at the iPXE prompt), or try it here:
  baleen run --netboot http://127.0.0.1:8080/NAME.ipxe
To serve a LAN, listen on its address (--addr 0.0.0.0:8080) and give the machines the URL with
this host's address. Firmware without HTTP (plain PXE) loads iPXE over TFTP first
(undionly.kpxe or ipxe.efi from Debian's `ipxe`, served by the LAN's TFTP server or listed
beside the system), which then fetches NAME.ipxe.

Bounds: 32 HTTP connections at a time (more get 503), 10 s for a request's head, clients taking
under 16 KiB/s after 30 s are dropped; 16 TFTP transfers at a time, blocks of at most 8192
bytes, each resent 5 times at most, 1 s apart.

Examples:
  baleen build --dir out minimal.yml && baleen serve out/minimal
  baleen serve --addr 0.0.0.0:8080 --tftp out/minimal out/os.efi";

/// Serve built systems over HTTP (and TFTP) for network boot, with an iPXE script per system.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct ServeArgs {
    /// What `baleen run` boots: a kernel+initrd prefix (out/minimal), a UKI (.efi), an ISO or
    /// a raw disk image.
    #[arg(value_name = "OUTPUT", required = true)]
    outputs: Vec<PathBuf>,
    /// Where to listen for HTTP (port 0: any free port).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Also serve the same files over TFTP (read-only, blksize and tsize options).
    #[arg(long)]
    tftp: bool,
    /// Where to listen for TFTP [default: --addr's address, port 6969].
    #[arg(long, value_name = "IP:PORT", requires = "tftp")]
    tftp_addr: Option<SocketAddr>,
}

pub fn run(args: ServeArgs, quiet: bool) -> anyhow::Result<i32> {
    let mut catalog = Catalog::new();
    let mut scripts = Vec::new();
    for output in &args.outputs {
        let script = add_system(&mut catalog, output)
            .with_context(|| format!("serving {}", output.display()))?;
        scripts.push(script);
    }
    let catalog = Arc::new(catalog);
    let log: Log = if quiet {
        Arc::new(|_: &Served| {})
    } else {
        Arc::new(|s: &Served| eprintln!("{}", log_line(s)))
    };
    let http = HttpServer::bind(args.addr, catalog.clone(), HttpLimits::default(), log.clone())?;
    let http_addr = http.local_addr()?;
    let tftp = match args.tftp {
        false => None,
        true => {
            let addr = args.tftp_addr.unwrap_or(SocketAddr::new(args.addr.ip(), 6969));
            let server = TftpServer::bind(addr, catalog.clone(), TftpLimits::default(), log)?;
            let addr = server.local_addr()?;
            Some((server, addr))
        }
    };
    for script in &scripts {
        println!("http://{}/{script}", shown(http_addr));
        if let Some((_, addr)) = &tftp {
            println!("tftp://{}/{script}", shown(*addr));
        }
    }
    if !quiet {
        eprintln!("serving on http://{}/:", shown(http_addr));
        for name in catalog.names() {
            eprintln!("  {name}");
        }
        if let Some(script) = scripts.first() {
            eprintln!(
                "try it: baleen run --netboot http://{}/{script}   (Ctrl-C stops serving)",
                shown(http_addr)
            );
        }
    }
    if let Some((server, _)) = tftp {
        std::thread::Builder::new()
            .name("tftp".into())
            .spawn(move || server.run())
            .context("starting the TFTP server")?;
    }
    http.run();
    Ok(crate::exit::OK)
}

/// The address a URL names: an unspecified one (0.0.0.0, ::) as the loopback, which reaches it.
fn shown(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

fn log_line(s: &Served) -> String {
    let status = if s.status == 0 { String::new() } else { format!(" {}", s.status) };
    let error = s.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
    format!("{} {} {}{status} {} bytes{error}", s.peer, s.method, s.name, s.bytes)
}

/// Adds `output`'s files and its iPXE script to `catalog`; returns the script's name.
fn add_system(catalog: &mut Catalog, output: &Path) -> anyhow::Result<String> {
    let detected = baleen_run::prepare::detect(output, None)
        .with_context(|| format!("reading {} as `baleen run` would", output.display()))?;
    let system = file_name(&detected.prefix)?;
    let script_name = format!("{system}.ipxe");
    let script = match &detected.boot {
        BootSource::KernelInitrd { kernel, initrd, cmdline } => {
            let (k, i) = (file_name(kernel)?, file_name(initrd)?);
            catalog.add_file(&k, kernel)?;
            catalog.add_file(&i, initrd)?;
            let cmdline_file = PathBuf::from(format!("{}-cmdline", detected.prefix.display()));
            if cmdline_file.is_file() {
                catalog.add_file(&file_name(&cmdline_file)?, &cmdline_file)?;
            }
            ipxe::script(&system, &Netboot::KernelInitrd { kernel: &k, initrd: &i, cmdline })?
        }
        BootSource::Uki(p) => {
            let name = file_name(p)?;
            catalog.add_file(&name, p)?;
            ipxe::script(&system, &Netboot::Efi { image: &name })?
        }
        BootSource::Iso(p) => {
            let name = file_name(p)?;
            catalog.add_file(&name, p)?;
            ipxe::script(&system, &Netboot::San { image: &name })?
        }
        BootSource::Disk { path, format } if format == "raw" => {
            let name = file_name(path)?;
            catalog.add_file(&name, path)?;
            ipxe::script(&system, &Netboot::San { image: &name })?
        }
        BootSource::Disk { format, .. } => anyhow::bail!(
            "iPXE's sanboot reads raw images only, not {format}; build raw-bios or raw-efi"
        ),
        BootSource::Squashfs { .. } => anyhow::bail!(
            "its root is a separate image the kernel mounts as a disk, which a machine booted \
             from the network does not have; build kernel+initrd (or a UKI) to serve it"
        ),
        BootSource::Network { .. } => anyhow::bail!("it is a network boot, not files"),
    };
    catalog.add_text(&script_name, script)?;
    Ok(script_name)
}

fn file_name(p: &Path) -> anyhow::Result<String> {
    p.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .with_context(|| format!("{} has no UTF-8 file name", p.display()))
}
