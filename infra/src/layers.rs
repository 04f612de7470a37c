//! The layering rule of `shared/`, checked: the crates stand in a fixed order (platform, edge,
//! domain, jobs) and each depends only on those below it; inside a crate, the public modules import
//! each other without a loop.
//!
//! Cargo already refuses a cycle between crates; it does not keep their order, nor modules inside one
//! crate from importing each other in a circle. A module's private parts (`mod x;` without `pub`) are
//! folded into it: they are one concern split over files. `cargo test -p infra layers` prints the
//! module graph's size.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates of `shared/`, lowest first: each may depend only on the ones before it.
pub const LAYERS: [&str; 4] = ["platform", "edge", "domain", "jobs"];

/// A crate's public modules (as `a::b` paths; `""` is the crate root) and the imports between them.
#[derive(Debug, Default)]
pub struct ModuleGraph {
    pub modules: BTreeSet<String>,
    pub imports: BTreeSet<(String, String)>,
}

/// Reads the module tree of the crate whose `src/` is `root`, following `mod` declarations from
/// `lib.rs`, and the `crate::…` paths each file names.
pub fn module_graph(root: &Path) -> std::io::Result<ModuleGraph> {
    let mut files = Vec::new();
    collect(&root.join("lib.rs"), &[], &[], &mut files)?;
    let mut graph = ModuleGraph {
        modules: files.iter().map(|(_, node, _)| node.clone()).collect(),
        ..ModuleGraph::default()
    };
    for (_, node, text) in &files {
        for path in crate_paths(text) {
            let segments: Vec<&str> = path.split("::").collect();
            let target = (1..=segments.len())
                .rev()
                .map(|k| segments[..k].join("::"))
                .find(|candidate| graph.modules.contains(candidate));
            if let Some(target) = target
                && &target != node
            {
                graph.imports.insert((node.clone(), target));
            }
        }
    }
    Ok(graph)
}

/// Walks `file` (module path `module`, public module `public`) and its `mod` children.
fn collect(
    file: &Path,
    module: &[String],
    public: &[String],
    out: &mut Vec<(PathBuf, String, String)>,
) -> std::io::Result<()> {
    let text = std::fs::read_to_string(file)?;
    let dir = match file.file_name().and_then(|n| n.to_str()) {
        Some("lib.rs" | "mod.rs") => file.parent().map(Path::to_path_buf).unwrap_or_default(),
        _ => file.with_extension(""),
    };
    for line in text.lines() {
        let line = line.trim_start();
        let (is_pub, rest) = match line.strip_prefix("pub mod ") {
            Some(rest) => (true, rest),
            None => match line.strip_prefix("mod ") {
                Some(rest) => (false, rest),
                None => continue,
            },
        };
        let Some(name) = rest.strip_suffix(';') else {
            continue; // an inline `mod tests {`
        };
        let mut child_module = module.to_vec();
        child_module.push(name.to_owned());
        // A public module of a public module is a node of its own; a private part folds into its parent.
        let child_public = if is_pub && public == module {
            child_module.clone()
        } else {
            public.to_vec()
        };
        let flat = dir.join(format!("{name}.rs"));
        let nested = dir.join(name).join("mod.rs");
        let child = if flat.exists() { flat } else { nested };
        collect(&child, &child_module, &child_public, out)?;
    }
    out.push((file.to_path_buf(), public.join("::"), text));
    Ok(())
}

/// Every `crate::a::b` path in `text`, comments left out.
fn crate_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let path = path.trim_end_matches(':');
            if !path.is_empty() {
                paths.push(path.to_owned());
            }
        }
    }
    paths
}

/// The loops of `graph`: each a set of modules that reach each other (Tarjan's algorithm).
pub fn loops(graph: &ModuleGraph) -> Vec<BTreeSet<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in &graph.imports {
        next.entry(from).or_default().push(to);
    }
    struct Walk<'a> {
        next: BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(walk: &mut Walk<'a>, node: &'a str) {
        let order = walk.index.len();
        walk.index.insert(node, order);
        walk.low.insert(node, order);
        walk.stack.push(node);
        for target in walk.next.get(node).cloned().unwrap_or_default() {
            if !walk.index.contains_key(target) {
                visit(walk, target);
                let low = walk.low[target].min(walk.low[node]);
                walk.low.insert(node, low);
            } else if walk.stack.contains(&target) {
                let low = walk.index[target].min(walk.low[node]);
                walk.low.insert(node, low);
            }
        }
        if walk.low[node] == walk.index[node] {
            let mut component = BTreeSet::new();
            while let Some(member) = walk.stack.pop() {
                component.insert(member.to_owned());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                walk.found.push(component);
            }
        }
    }
    let mut walk = Walk {
        next,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for module in &graph.modules {
        if !walk.index.contains_key(module.as_str()) {
            visit(&mut walk, module);
        }
    }
    walk.found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_module_imports_in_a_loop() {
        for layer in LAYERS {
            let root = crate::repo_root().join("shared").join(layer).join("src");
            let graph = module_graph(&root).expect("the crate's sources");
            println!(
                "{layer}: {} public modules, {} imports between them",
                graph.modules.len(),
                graph.imports.len()
            );
            assert!(
                graph.modules.len() > 1,
                "{layer}: no modules found under {}",
                root.display()
            );
            assert_eq!(
                loops(&graph),
                Vec::<BTreeSet<String>>::new(),
                "{layer} has an import loop"
            );
        }
    }

    #[test]
    fn each_layer_depends_only_on_those_below() {
        for (position, layer) in LAYERS.iter().enumerate() {
            let manifest = crate::repo_root().join("shared").join(layer).join("Cargo.toml");
            let text = std::fs::read_to_string(&manifest).expect("Cargo.toml");
            let manifest: toml::Table = toml::from_str(&text).expect("a valid manifest");
            let dependencies = manifest
                .get("dependencies")
                .and_then(toml::Value::as_table)
                .expect("[dependencies]");
            for (other_position, other) in LAYERS.iter().enumerate() {
                if dependencies.contains_key(*other) {
                    assert!(
                        other_position < position,
                        "{layer} depends on {other}, which is above it"
                    );
                }
            }
        }
    }

    #[test]
    fn a_loop_is_found() {
        let graph = ModuleGraph {
            modules: ["a", "b", "c"].map(String::from).into_iter().collect(),
            imports: [("a", "b"), ("b", "a"), ("b", "c")]
                .map(|(x, y)| (x.to_owned(), y.to_owned()))
                .into_iter()
                .collect(),
        };
        let found = loops(&graph);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0], ["a", "b"].map(String::from).into_iter().collect());
        assert_eq!(
            crate_paths("use crate::x::{y}; // crate::z"),
            vec!["x".to_owned()]
        );
    }
}
