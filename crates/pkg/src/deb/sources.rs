//! Which Debian archive to use: the one the host's apt sources name (deb822
//! `/etc/apt/sources.list.d/*.sources` and one-line `sources.list`), else Debian's CDN.

use std::path::Path;

/// The archive used when the host names none (a non-Debian host).
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// One `deb` source: archive root URI and its suites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub uri: String,
    pub suites: Vec<String>,
    pub components: Vec<String>,
}

/// Reads the apt sources under `root` (normally `/`).
pub fn host_sources(root: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    let list = root.join("etc/apt/sources.list");
    if let Ok(text) = std::fs::read_to_string(&list) {
        out.extend(parse_one_line(&text));
    }
    let dir = root.join("etc/apt/sources.list.d");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        match f.extension().and_then(|e| e.to_str()) {
            Some("sources") => out.extend(parse_deb822(&text)),
            Some("list") => out.extend(parse_one_line(&text)),
            _ => {}
        }
    }
    out
}

/// The mirror serving `suite` among `sources`, preferring the first source that lists it with
/// the `main` component; [`DEFAULT_MIRROR`] when none does.
pub fn mirror_for(sources: &[Source], suite: &str) -> String {
    sources
        .iter()
        .find(|s| s.suites.iter().any(|x| x == suite) && s.components.iter().any(|c| c == "main"))
        .map(|s| s.uri.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| DEFAULT_MIRROR.to_owned())
}

/// `deb [opts] uri suite comp…` lines; `deb-src` and comments skipped.
pub fn parse_one_line(text: &str) -> Vec<Source> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?.trim();
            let rest = line.strip_prefix("deb ")?.trim();
            // Options are in brackets: `deb [arch=amd64 signed-by=…] http://…`.
            let rest = match rest.strip_prefix('[') {
                Some(r) => r.split_once(']')?.1.trim(),
                None => rest,
            };
            let mut words = rest.split_whitespace();
            let uri = words.next()?.to_owned();
            let suite = words.next()?.to_owned();
            Some(Source {
                uri,
                suites: vec![suite],
                components: words.map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// deb822 `.sources` paragraphs with `Types: deb`, unless `Enabled: no`.
pub fn parse_deb822(text: &str) -> Vec<Source> {
    super::control::parse(text)
        .into_iter()
        .filter(|p| p.get("Types").is_some_and(|t| t.split_whitespace().any(|t| t == "deb")))
        .filter(|p| !p.get("Enabled").is_some_and(|e| e.eq_ignore_ascii_case("no")))
        .flat_map(|p| {
            let words = |k: &str| -> Vec<String> {
                p.get(k).unwrap_or("").split_whitespace().map(str::to_owned).collect()
            };
            let (suites, components) = (words("Suites"), words("Components"));
            words("URIs").into_iter().map(move |uri| Source {
                uri,
                suites: suites.clone(),
                components: components.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_and_one_line() {
        let s = parse_deb822(
            "Types: deb\n# a comment\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
             Types: deb-src\nURIs: http://src.example\nSuites: bookworm\nComponents: main\n\n\
             Types: deb\nEnabled: no\nURIs: http://off.example\nSuites: bookworm\nComponents: main\n",
        );
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].suites, ["bookworm", "bookworm-updates"]);
        let l = parse_one_line("# x\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main contrib\ndeb-src http://x bookworm main\n");
        assert_eq!(
            l,
            [Source {
                uri: "http://mirror.example/debian/".into(),
                suites: vec!["bookworm".into()],
                components: vec!["main".into(), "contrib".into()]
            }]
        );
        assert_eq!(mirror_for(&l, "bookworm"), "http://mirror.example/debian");
        assert_eq!(mirror_for(&l, "trixie"), DEFAULT_MIRROR);
    }

    #[test]
    fn reads_a_host_tree() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc/apt/sources.list.d")).unwrap();
        std::fs::write(
            t.path().join("etc/apt/sources.list.d/debian.sources"),
            "Types: deb\nURIs: http://local.mirror/debian\nSuites: bookworm\nComponents: main\n",
        )
        .unwrap();
        assert_eq!(mirror_for(&host_sources(t.path()), "bookworm"), "http://local.mirror/debian");
    }
}
