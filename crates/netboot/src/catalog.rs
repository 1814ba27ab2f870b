//! The files a server hands out, by name.

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

/// What one name serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A host file, opened at each request (a rebuilt output is served as it is now).
    File(PathBuf),
    /// Generated text (an iPXE script).
    Text(String),
}

/// A name the catalog cannot take.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{name:?} cannot be served: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("two files would be served as {name:?}: {first} and {second}")]
    Duplicate { name: String, first: String, second: String },
}

/// The served files: names are plain file names of URL-safe characters, so an iPXE script can
/// name them relative to its own URL and a TFTP or HTTP path can only ever match one exactly.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: BTreeMap<String, Content>,
}

/// Why `name` is no catalog name, if it is not.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("the name is empty");
    }
    if name == "." || name == ".." {
        return Some("the name is a directory reference");
    }
    if name.len() > 255 {
        return Some("the name is longer than 255 bytes");
    }
    let url_safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '~');
    if !name.chars().all(url_safe) {
        return Some(
            "only ASCII letters, digits and . _ - + ~ are served (names go into URLs and iPXE \
             scripts unquoted)",
        );
    }
    None
}

fn describe(c: &Content) -> String {
    match c {
        Content::File(p) => p.display().to_string(),
        Content::Text(_) => "a generated script".to_string(),
    }
}

/// An open entry: its length and a reader positioned at its start.
pub struct Opened {
    pub len: u64,
    pub body: Box<dyn ReadSeek + Send>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened").field("len", &self.len).finish()
    }
}

/// `Read + Seek`, as one trait object.
pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Serves `path` as `name`.
    pub fn add_file(&mut self, name: &str, path: &Path) -> Result<(), CatalogError> {
        self.add(name, Content::File(path.to_path_buf()))
    }

    /// Serves `text` as `name`.
    pub fn add_text(&mut self, name: &str, text: String) -> Result<(), CatalogError> {
        self.add(name, Content::Text(text))
    }

    fn add(&mut self, name: &str, content: Content) -> Result<(), CatalogError> {
        if let Some(reason) = name_problem(name) {
            return Err(CatalogError::BadName { name: name.to_string(), reason });
        }
        if let Some(first) = self.entries.get(name) {
            return Err(CatalogError::Duplicate {
                name: name.to_string(),
                first: describe(first),
                second: describe(&content),
            });
        }
        self.entries.insert(name.to_string(), content);
        Ok(())
    }

    /// The names served, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn get(&self, name: &str) -> Option<&Content> {
        self.entries.get(name)
    }

    /// The entry a request path names: one optional leading `/`, then exactly a name. Anything
    /// else (`../x`, `a/b`, `%2e%2e`, an empty path) names nothing.
    pub fn lookup(&self, path: &str) -> Option<(&str, &Content)> {
        let name = path.strip_prefix('/').unwrap_or(path);
        self.entries.get_key_value(name).map(|(k, v)| (k.as_str(), v))
    }

    /// Opens `content` for reading.
    pub fn open(content: &Content) -> std::io::Result<Opened> {
        match content {
            Content::File(p) => {
                let f = std::fs::File::open(p)?;
                let meta = f.metadata()?;
                if !meta.is_file() {
                    return Err(std::io::Error::other(format!(
                        "{} is no longer a regular file",
                        p.display()
                    )));
                }
                Ok(Opened { len: meta.len(), body: Box::new(f) })
            }
            Content::Text(t) => {
                let bytes = t.clone().into_bytes();
                let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
                Ok(Opened { len, body: Box::new(std::io::Cursor::new(bytes)) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_names_are_found() {
        let mut c = Catalog::new();
        c.add_text("sys.ipxe", "#!ipxe\n".into()).unwrap();
        assert!(c.lookup("/sys.ipxe").is_some());
        assert!(c.lookup("sys.ipxe").is_some());
        for miss in
            ["", "/", "//sys.ipxe", "/../sys.ipxe", "/./sys.ipxe", "/SYS.IPXE", "/x/sys.ipxe"]
        {
            assert!(c.lookup(miss).is_none(), "{miss:?} found");
        }
    }

    #[test]
    fn names_that_could_climb_or_need_quoting_are_refused() {
        let mut c = Catalog::new();
        for bad in
            ["", ".", "..", "../x", "a/b", "/etc/passwd", "a b", "x\ny", "a\\b", "%2e%2e", "${x}"]
        {
            let err = c.add_text(bad, String::new()).unwrap_err();
            assert!(matches!(err, CatalogError::BadName { .. }), "{bad:?}: {err}");
        }
        for good in ["sys-kernel", "sys-initrd.img", "os.efi", "..hidden", "a+b~c_d"] {
            c.add_text(good, String::new()).unwrap();
        }
        let err = c.add_text("os.efi", String::new()).unwrap_err();
        assert!(err.to_string().contains("two files would be served as \"os.efi\""), "{err}");
    }
}
