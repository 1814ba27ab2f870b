//! Which containers of a build get host-level power, and `--privileges=deny-label`.
//!
//! An image's `org.mobyproject.config` label may grant its own container host root (LinuxKit's
//! language, kept). The pipeline attributes each grant to the YAML or to the label
//! ([`baleen_spec::privileges`]) while rendering, hands the list to [`Privileges::report`] once,
//! before any output is written, and under [`PrivilegePolicy::DenyLabel`] refuses the grants
//! only a label asks for.

use baleen_spec::privileges::{self, Granted, Origin};
use baleen_spec::runtime::{config_to_oci, ImageDefaults, RuntimeError};
use baleen_spec::{Config, IdMap, ImageConfig};
use std::fmt;

/// `--privileges`: what a grant that only an image label asks for does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PrivilegePolicy {
    /// LinuxKit's behaviour: the label's grants apply (and are listed).
    #[default]
    Allow,
    /// A grant only the label asks for is an error; the YAML granting it makes it fine.
    DenyLabel,
}

/// Shown the containers with host-level power (the CLI prints them).
pub type Report<'a> = &'a dyn Fn(&[Privileged]);

/// The privilege settings of a build request.
#[derive(Default, Clone, Copy)]
pub struct Privileges<'a> {
    pub policy: PrivilegePolicy,
    /// Called once per build, after every container is rendered and before any output is
    /// written, with the containers that get host-level power (never with an empty list).
    pub report: Option<Report<'a>>,
}

impl fmt::Debug for Privileges<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Privileges")
            .field("policy", &self.policy)
            .field("report", &self.report.is_some())
            .finish()
    }
}

/// One container with host-level grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privileged {
    /// `onboot`, `onshutdown` or `services`.
    pub section: &'static str,
    pub index: usize,
    pub name: String,
    /// The image as the YAML wrote it.
    pub image: String,
    pub grants: Vec<Granted>,
}

impl Privileged {
    /// `services[0] "sshd"`, as the other build errors name a container.
    pub fn location(&self) -> String {
        format!("{}[{}] {:?}", self.section, self.index, self.name)
    }
}

/// The label's grants refused by [`PrivilegePolicy::DenyLabel`], one line per container.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(denied_line).collect::<Vec<_>>().join("\n"))]
pub struct LabelGrantsDenied(pub Vec<Privileged>);

fn denied_line(p: &Privileged) -> String {
    let grants: Vec<String> = p
        .grants
        .iter()
        .filter(|g| g.origin == Origin::Label)
        .map(|g| g.grant.to_string())
        .collect();
    format!(
        "{}: image {}: its org.mobyproject.config label grants {}, refused by \
         --privileges=deny-label (grant it in the YAML entry to accept it)",
        p.location(),
        p.image,
        grants.join(", ")
    )
}

/// The grants of one container rendered with `label`, each attributed to the YAML or the label
/// (by rendering the entry once more without the label).
pub fn attributed(
    name: &str,
    yaml: &ImageConfig,
    label: Option<&ImageConfig>,
    rendered: (&baleen_spec::oci::Spec, &baleen_spec::oci::RuntimeJson),
    defaults: &ImageDefaults,
    ids: &IdMap,
) -> Result<Vec<Granted>, RuntimeError> {
    let merged = privileges::grants(rendered.0, rendered.1);
    let yaml_only = match label {
        None => merged.clone(),
        Some(_) => {
            let (spec, rt) = config_to_oci(name, yaml, None, defaults, ids)?;
            privileges::grants(&spec, &rt)
        }
    };
    Ok(privileges::attribute(merged, &yaml_only))
}

/// What the YAML alone grants, without reading any image: `--dry-run`'s view. Containers that
/// do not render (a problem `build` reports) are left out.
pub fn yaml_grants(cfg: &Config) -> Vec<Privileged> {
    let ids = IdMap::new(cfg);
    let sections =
        [("onboot", &cfg.onboot), ("onshutdown", &cfg.onshutdown), ("services", &cfg.services)];
    let mut out = Vec::new();
    for (section, list) in sections {
        for (index, entry) in list.iter().enumerate() {
            let defaults = ImageDefaults::default();
            let Ok((spec, rt)) = config_to_oci(&entry.name, &entry.config, None, &defaults, &ids)
            else {
                continue;
            };
            let grants = privileges::grants(&spec, &rt);
            if grants.is_empty() {
                continue;
            }
            out.push(Privileged {
                section,
                index,
                name: entry.name.clone(),
                image: entry.image.clone(),
                grants: privileges::attribute(grants.clone(), &grants),
            });
        }
    }
    out
}

/// Reports `privileged` and applies `settings.policy`.
pub fn enforce(
    settings: &Privileges<'_>,
    privileged: &[Privileged],
) -> Result<(), LabelGrantsDenied> {
    if let (Some(report), false) = (settings.report, privileged.is_empty()) {
        report(privileged);
    }
    if settings.policy == PrivilegePolicy::Allow {
        return Ok(());
    }
    let denied: Vec<Privileged> = privileged
        .iter()
        .filter(|p| p.grants.iter().any(|g| g.origin == Origin::Label))
        .cloned()
        .collect();
    if denied.is_empty() {
        Ok(())
    } else {
        Err(LabelGrantsDenied(denied))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baleen_spec::privileges::Grant;

    fn container(origins: &[(Grant, Origin)]) -> Privileged {
        Privileged {
            section: "services",
            index: 1,
            name: "evil".into(),
            image: "baleen/evil:1".into(),
            grants: origins.iter().map(|(g, o)| Granted { grant: g.clone(), origin: *o }).collect(),
        }
    }

    #[test]
    fn deny_label_refuses_only_label_grants() {
        let label =
            container(&[(Grant::AllCapabilities, Origin::Label), (Grant::HostPid, Origin::Yaml)]);
        let yaml = container(&[(Grant::SysAdmin, Origin::Yaml)]);
        let deny = Privileges { policy: PrivilegePolicy::DenyLabel, report: None };
        assert!(enforce(&deny, std::slice::from_ref(&yaml)).is_ok());
        let err = enforce(&deny, &[yaml.clone(), label.clone()]).unwrap_err().to_string();
        assert_eq!(
            err,
            "services[1] \"evil\": image baleen/evil:1: its org.mobyproject.config label grants \
             all capabilities, refused by --privileges=deny-label (grant it in the YAML entry to \
             accept it)"
        );
        assert!(enforce(&Privileges::default(), &[label]).is_ok());
    }

    #[test]
    fn the_report_sees_the_list_once_and_never_empty() {
        let seen = std::cell::RefCell::new(Vec::new());
        let report = |p: &[Privileged]| seen.borrow_mut().push(p.len());
        let settings = Privileges { policy: PrivilegePolicy::Allow, report: Some(&report) };
        enforce(&settings, &[]).unwrap();
        enforce(&settings, &[container(&[(Grant::HostPid, Origin::Yaml)])]).unwrap();
        assert_eq!(*seen.borrow(), [1]);
    }

    #[test]
    fn dry_run_lists_what_the_yaml_grants() {
        let yaml = "onboot:\n  - name: sysctl\n    image: linuxkit/sysctl:1\n    capabilities: [CAP_SYS_ADMIN]\n    pid: host\nservices:\n  - name: plain\n    image: alpine\n";
        let cfg = baleen_spec::load_all(
            &[baleen_spec::Source { name: "t.yml", text: yaml, template_dir: None }],
            None,
        )
        .unwrap();
        let list = yaml_grants(&cfg);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].location(), "onboot[0] \"sysctl\"");
        let grants: Vec<String> = list[0].grants.iter().map(|g| g.grant.to_string()).collect();
        assert_eq!(grants, ["CAP_SYS_ADMIN", "host pid namespace"]);
        assert!(list[0].grants.iter().all(|g| g.origin == Origin::Yaml));
    }
}
