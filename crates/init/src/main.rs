//! baleen-init: PID 1 inside every baleen image (see the library docs). Run as `baleen-ctl`
//! (a symlink) or `baleen-init ctl …`, it is the in-guest client instead.

fn main() {
    #[cfg(target_os = "linux")]
    {
        let args: Vec<String> = std::env::args().collect();
        let argv0 = args.first().map(String::as_str).unwrap_or("");
        if argv0.ends_with("baleen-ctl") {
            std::process::exit(baleen_init::supervisor::ctl_main(&args[1..]));
        }
        if args.get(1).map(String::as_str) == Some("ctl") {
            std::process::exit(baleen_init::supervisor::ctl_main(&args[2..]));
        }
        baleen_init::run()
    }
    #[cfg(not(target_os = "linux"))]
    {
        eprintln!("baleen-init runs only on Linux");
        std::process::exit(1);
    }
}
