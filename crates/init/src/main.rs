//! baleen-init: PID 1 inside every baleen image (see the library docs). Run as `baleen-ctl`
//! (a symlink) or `baleen-init ctl …`, it is the in-guest client instead; `baleen-init plan
//! BUNDLE` prints the steps it would take for a bundle, on any machine.

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
        if args.get(1).map(String::as_str) == Some("plan") && args.len() == 3 {
            match baleen_init::container::plan(std::path::Path::new(&args[2])) {
                Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
                Err(e) => {
                    eprintln!("baleen-init plan: {}", baleen_init::console::chain(&e));
                    std::process::exit(1);
                }
            }
            return;
        }
        baleen_init::run()
    }
    #[cfg(not(target_os = "linux"))]
    {
        eprintln!("baleen-init runs only on Linux");
        std::process::exit(1);
    }
}
