//! Loading a project: YAML → schema check → typed config → compiled pipelines.
//!
//! Every stage collects diagnostics instead of stopping: a file with a YAML error is skipped,
//! but the other files are still checked, and one run of `validate` shows every problem.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jsonschema::error::ValidationErrorKind;
use minijinja::value::{Serde, Value as TplValue};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{FieldSpec, PROJECT_FILE, PipelineConfig, ProjectConfig};
use crate::connector::{Entities, Registry};
use crate::diagnostic::{Diagnostic, Position, sort_and_dedup};
use crate::pipeline::{Cursor, Field, Pipeline, Source, Target};
use crate::schedule::Schedule;
use crate::schema::{pipeline_schema, project_schema};
use crate::select::JsonPath;
use crate::template::{Templates, suggest};
use crate::yaml::{SourceMap, YamlDocument, escape_pointer_segment};

/// Variables a pipeline's templates can read.
const RECORD_VARS: &[&str] = &["record", "vars", "pipeline"];
/// Variables inside a `for_each`.
const ITEM_VARS: &[&str] = &["record", "vars", "pipeline", "item", "index"];

/// A loaded, valid project.
#[derive(Debug)]
pub struct Project {
    /// The directory holding the project file.
    pub dir: PathBuf,
    /// The project file.
    pub file: PathBuf,
    pub config: ProjectConfig,
    /// Pipelines in dependency order (a pipeline comes after everything it depends on).
    pub pipelines: Vec<Pipeline>,
}

impl Project {
    pub fn pipeline(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.name == name)
    }

    /// The state database path.
    pub fn state_path(&self) -> PathBuf {
        self.dir.join(&self.config.state.path)
    }

    /// The secrets vault path.
    pub fn vault_path(&self) -> PathBuf {
        self.dir.join(&self.config.state.vault)
    }

    /// The master key file path.
    pub fn key_file_path(&self) -> PathBuf {
        self.dir.join(&self.config.state.key_file)
    }
}

/// Finds the project file for a path: the path itself, `PATH/ml-connector.yaml`, or the nearest
/// `ml-connector.yaml` in a parent directory (for a pipeline file).
pub fn find_project_file(path: &Path) -> Option<PathBuf> {
    if path.is_file() && path.file_name().is_some_and(|n| n == PROJECT_FILE) {
        return Some(path.to_path_buf());
    }
    let mut dir = if path.is_dir() { Some(path) } else { path.parent() };
    while let Some(d) = dir {
        let candidate = d.join(PROJECT_FILE);
        if candidate.is_file() {
            return Some(candidate);
        }
        dir = d.parent();
    }
    None
}

/// Every project file at or below `dir` (for `validate mappings/`), sorted.
pub fn find_project_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                if !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                    stack.push(p);
                }
            } else if p.file_name().is_some_and(|n| n == PROJECT_FILE) {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

/// Loads and compiles a project. Returns every diagnostic when anything is wrong.
pub fn load_project(project_file: &Path, registry: &Registry) -> Result<Project, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let project_schema = project_schema(registry);
    let pipeline_schema = pipeline_schema(registry);
    let dir = project_file.parent().map(Path::to_path_buf).unwrap_or_default();

    let Some((config, project_doc)) = load_typed::<ProjectConfig>(project_file, &project_schema, &mut diags) else {
        sort_and_dedup(&mut diags);
        return Err(diags);
    };
    let templates = Templates::new();
    let vars = TplValue::from(Serde(&config.vars));

    let mut pipelines = Vec::new();
    let mut names: HashMap<String, (PathBuf, Position)> = HashMap::new();
    for file in discover_pipeline_files(&dir, &config, project_file, &project_doc.source_map, &mut diags) {
        let Some((pc, doc)) = load_typed::<PipelineConfig>(&file, &pipeline_schema, &mut diags) else { continue };
        let name_pos = doc.source_map.position("/name");
        let duplicate_of = names.get(&pc.name).cloned();
        if duplicate_of.is_none() {
            names.insert(pc.name.clone(), (file.clone(), name_pos.unwrap_or_default()));
        }
        // A duplicate is still compiled, so its other problems are reported too.
        let mut compiler = Compiler { file: &file, map: &doc.source_map, templates, diags: &mut diags };
        let compiled = compiler.pipeline(pc, &config, registry, vars.clone());
        match (duplicate_of, compiled) {
            (Some((first_file, first_pos)), _) => {
                let name = doc.value.get("name").and_then(Value::as_str).unwrap_or_default();
                let message = format!(
                    "pipeline name `{name}` is already used at {}:{}:{}",
                    first_file.display(),
                    first_pos.line,
                    first_pos.column
                );
                diags.push(Diagnostic::new(&file, name_pos, "duplicate", message));
            }
            (None, Some(p)) => pipelines.push((p, doc.source_map)),
            (None, None) => {}
        }
    }

    let ordered = order_by_dependencies(pipelines, &names, &mut diags);
    if !diags.is_empty() {
        sort_and_dedup(&mut diags);
        return Err(diags);
    }
    Ok(Project { dir, file: project_file.to_path_buf(), config, pipelines: ordered })
}

fn discover_pipeline_files(
    dir: &Path,
    config: &ProjectConfig,
    project_file: &Path,
    map: &SourceMap,
    diags: &mut Vec<Diagnostic>,
) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (i, entry) in config.pipelines.iter().enumerate() {
        let path = dir.join(entry);
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&path)
                .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| is_pipeline_file(p)).collect())
                .unwrap_or_default();
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path);
        } else {
            let pos = map.position(&format!("/pipelines/{i}"));
            diags.push(Diagnostic::new(
                project_file,
                pos,
                "reference",
                format!("`{entry}` is neither a pipeline file nor a directory"),
            ));
        }
    }
    files
}

/// `*.yaml` / `*.yml`, but not mapping tests (`*.test.yaml`) or a nested project file.
pub fn is_pipeline_file(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    p.is_file() && (name.ends_with(".yaml") || name.ends_with(".yml")) && !is_test_file(p) && name != PROJECT_FILE
}

/// A mapping-test file: `*.test.yaml` / `*.test.yml`.
pub fn is_test_file(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.ends_with(".test.yaml") || name.ends_with(".test.yml")
}

/// Reads a YAML file, checks it against `schema`, and deserializes it.
pub fn load_typed<T: DeserializeOwned>(
    file: &Path,
    schema: &Value,
    diags: &mut Vec<Diagnostic>,
) -> Option<(T, YamlDocument)> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            diags.push(Diagnostic::file(file, "io", format!("cannot read the file: {e}")));
            return None;
        }
    };
    let doc = match crate::yaml::parse(file, &text) {
        Ok(doc) => doc,
        Err(errors) => {
            diags.extend(errors);
            return None;
        }
    };
    let before = diags.len();
    schema_diagnostics(file, schema, &doc, diags);
    let schema_ok = diags.len() == before;
    // Even with schema errors, a file that still deserializes (a wrong `version`, a value out
    // of range) goes on to the semantic checks, so one run reports every problem.
    match serde_path_to_error::deserialize::<_, T>(&doc.value) {
        Ok(value) => Some((value, doc)),
        Err(_) if !schema_ok => None,
        Err(e) => {
            let pointer: String =
                e.path().iter().map(|s| format!("/{}", escape_pointer_segment(&s.to_string()))).collect();
            diags.push(Diagnostic::new(file, doc.source_map.position(&pointer), "schema", e.into_inner().to_string()));
            None
        }
    }
}

/// Validates a document against a schema, one diagnostic per violation, placed at the node.
pub fn schema_diagnostics(file: &Path, schema: &Value, doc: &YamlDocument, diags: &mut Vec<Diagnostic>) {
    let validator = match jsonschema::draft7::new(schema) {
        Ok(v) => v,
        Err(e) => {
            diags.push(Diagnostic::file(file, "internal", format!("the built-in schema does not compile: {e}")));
            return;
        }
    };
    let known_keys = property_names(schema);
    for error in validator.iter_errors(&doc.value) {
        let pointer = error.instance_path().as_str().to_owned();
        // A documented enum is a `oneOf` of constants: report it as the choice it is, not as
        // "not valid under any of the schemas listed in the 'oneOf' keyword".
        let constants = match error.kind() {
            ValidationErrorKind::OneOfNotValid { .. } => one_of_constants(schema, error.schema_path().as_str()),
            _ => None,
        };
        if let Some(options) = constants {
            diags.push(enum_diagnostic(file, doc, &pointer, &options, error.instance()));
            continue;
        }
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    let at = format!("{pointer}/{}", escape_pointer_segment(key));
                    let hint = suggest(key, known_keys.iter().map(String::as_str));
                    diags.push(Diagnostic::new(
                        file,
                        doc.source_map.key_position(&at),
                        "schema",
                        format!("unknown key `{key}`{hint}"),
                    ));
                }
            }
            // An if/then failure repeats the errors of the branch, which are reported on their own.
            ValidationErrorKind::FalseSchema => {}
            // List every choice (the validator's own message truncates long lists); the value
            // itself is not echoed, only the known option it is closest to.
            ValidationErrorKind::Enum { options } => {
                let options: Vec<Value> = options.as_array().cloned().unwrap_or_default();
                diags.push(enum_diagnostic(file, doc, &pointer, &options, error.instance()));
            }
            _ => {
                let place = if pointer.is_empty() { String::new() } else { format!(" (at {pointer})") };
                diags.push(Diagnostic::new(
                    file,
                    doc.source_map.position(&pointer),
                    "schema",
                    format!("{}{place}", error.masked()),
                ));
            }
        }
    }
}

/// "must be one of `a`, `b` (did you mean …)", at the value.
fn enum_diagnostic(file: &Path, doc: &YamlDocument, pointer: &str, options: &[Value], given: &Value) -> Diagnostic {
    let choices: Vec<String> = options
        .iter()
        .map(|o| match o {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    let hint = suggest(given.as_str().unwrap_or_default(), choices.iter().map(String::as_str));
    let list = choices.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
    Diagnostic::new(
        file,
        doc.source_map.position(pointer),
        "schema",
        format!("must be one of {list}{hint} (at {pointer})"),
    )
}

/// The constants of the `oneOf` at `schema_path` (a JSON Pointer into `schema`), when every
/// branch is a `const`.
fn one_of_constants(schema: &Value, schema_path: &str) -> Option<Vec<Value>> {
    let branches = schema.pointer(schema_path)?.as_array()?;
    branches.iter().map(|b| b.get("const").cloned()).collect::<Option<Vec<_>>>().filter(|c| !c.is_empty())
}

/// Every property name a schema declares, for "did you mean" hints.
fn property_names(schema: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut stack = vec![schema];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                if let Some(Value::Object(props)) = map.get("properties") {
                    names.extend(props.keys().cloned());
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    names
}

/// Compiles one pipeline file, reporting problems at their place.
struct Compiler<'a> {
    file: &'a Path,
    map: &'a SourceMap,
    templates: Templates,
    diags: &'a mut Vec<Diagnostic>,
}

impl Compiler<'_> {
    fn report(&mut self, pointer: &str, code: &'static str, message: String) {
        self.diags.push(Diagnostic::new(self.file, self.map.position(pointer), code, message));
    }

    fn pipeline(
        &mut self,
        pc: PipelineConfig,
        project: &ProjectConfig,
        registry: &Registry,
        vars: TplValue,
    ) -> Option<Pipeline> {
        let before = self.diags.len();
        let connection_names = || project.connections.keys().map(String::as_str);

        // Source.
        let source_conn = project.connections.get(&pc.source.connection);
        match source_conn {
            None => self.report(
                "/source/connection",
                "reference",
                format!(
                    "unknown connection `{}`{}",
                    pc.source.connection,
                    known_list(connection_names(), &pc.source.connection)
                ),
            ),
            Some(conn) => {
                if let Some(connector) = registry.get(&conn.connector)
                    && let Entities::Named(list) = connector.entities()
                    && !list.iter().any(|e| e.name == pc.source.entity)
                {
                    let names = list.iter().map(|e| e.name);
                    self.report(
                        "/source/entity",
                        "reference",
                        format!(
                            "connector `{}` has no entity `{}`{}",
                            conn.connector,
                            pc.source.entity,
                            known_list(names, &pc.source.entity)
                        ),
                    );
                }
            }
        }

        // Target.
        let target_connector = match project.connections.get(&pc.target.connection) {
            None => {
                self.report(
                    "/target/connection",
                    "reference",
                    format!(
                        "unknown connection `{}`{}",
                        pc.target.connection,
                        known_list(connection_names(), &pc.target.connection)
                    ),
                );
                None
            }
            Some(conn) => registry.get(&conn.connector).cloned(),
        };
        if let Some(connector) = &target_connector {
            let resources = connector.resources();
            match resources.iter().find(|r| r.name == pc.target.resource) {
                None => {
                    let names = resources.iter().map(|r| r.name);
                    self.report(
                        "/target/resource",
                        "reference",
                        format!(
                            "connector `{}` has no resource `{}`{}",
                            connector.name(),
                            pc.target.resource,
                            known_list(names, &pc.target.resource)
                        ),
                    );
                }
                Some(resource) => {
                    for name in pc.target.params.keys() {
                        if !resource.params.iter().any(|p| p.name == name) {
                            let at = format!("/target/params/{}", escape_pointer_segment(name));
                            let hint = known_list(resource.params.iter().map(|p| p.name), name);
                            self.diags.push(Diagnostic::new(
                                self.file,
                                self.map.key_position(&at),
                                "reference",
                                format!("resource `{}` has no parameter `{name}`{hint}", resource.name),
                            ));
                        }
                    }
                    for p in resource.params.iter().filter(|p| p.required && !pc.target.params.contains_key(p.name)) {
                        self.report(
                            "/target",
                            "reference",
                            format!(
                                "resource `{}` needs the parameter `{}` ({})",
                                resource.name, p.name, p.description
                            ),
                        );
                    }
                }
            }
        }

        // Templates.
        let filter = pc.filter.as_deref().and_then(|f| self.condition("/filter", f, RECORD_VARS));
        let key = self.template("/key", &pc.key, RECORD_VARS);
        let fields = self.object("/fields", &pc.fields, RECORD_VARS);
        let params = self.object("/target/params", &pc.target.params, RECORD_VARS);

        // Schedule: as written, or `webhook` for a source whose records arrive as events.
        let event_driven = source_conn.and_then(|c| registry.get(&c.connector)).is_some_and(|c| c.event_driven());
        let schedule = match &pc.schedule {
            Some(config) => match Schedule::compile(config) {
                Ok(s) => Some(s),
                Err((key, message)) => {
                    self.report(&format!("/schedule/{key}"), "schedule", message);
                    None
                }
            },
            None => event_driven.then(Schedule::webhook),
        };

        for (i, dep) in pc.depends_on.iter().enumerate() {
            if *dep == pc.name {
                self.report(&format!("/depends_on/{i}"), "cycle", format!("pipeline `{dep}` depends on itself"));
            }
        }

        if self.diags.len() > before {
            return None;
        }
        let defaults = &project.defaults;
        Some(Pipeline {
            name: pc.name,
            file: self.file.to_path_buf(),
            description: pc.description,
            source: Source {
                connection: pc.source.connection,
                entity: pc.source.entity,
                id: pc.source.id,
                cursor: pc.source.cursor.map(|c| Cursor {
                    field: c.field,
                    kind: c.kind,
                    lookback: c.lookback.unwrap_or(defaults.lookback),
                }),
                select: pc.source.select,
                expand: pc.source.expand,
                page_size: pc.source.page_size.unwrap_or(defaults.page_size),
            },
            filter: filter.flatten(),
            fields: fields?,
            key: key?,
            target: Target {
                connection: pc.target.connection,
                resource: pc.target.resource,
                params: params?,
                connector: target_connector?,
            },
            depends_on: pc.depends_on,
            on_error: pc.on_error.unwrap_or_else(|| defaults.on_error.clone()),
            schedule,
            vars,
            record_reads: Default::default(),
        })
    }

    fn template(&mut self, pointer: &str, text: &str, vars: &[&str]) -> Option<crate::template::CompiledTemplate> {
        match self.templates.compile(text, vars) {
            Ok(t) => Some(t),
            Err(e) => {
                let pos = self.map.position_in_string(pointer, text, e.offset).or_else(|| self.map.position(pointer));
                self.diags.push(Diagnostic::new(self.file, pos, "template", e.message));
                None
            }
        }
    }

    /// `Some(None)` is never returned; the outer Option is "compiled or reported".
    fn condition(&mut self, pointer: &str, text: &str, vars: &[&str]) -> Option<Option<crate::template::Condition>> {
        match self.templates.compile_condition(text, vars) {
            Ok(c) => Some(Some(c)),
            Err(e) => {
                let pos = self.map.position_in_string(pointer, text, e.offset).or_else(|| self.map.position(pointer));
                self.diags.push(Diagnostic::new(self.file, pos, "template", e.message));
                None
            }
        }
    }

    fn object(
        &mut self,
        pointer: &str,
        fields: &BTreeMap<String, FieldSpec>,
        vars: &[&str],
    ) -> Option<BTreeMap<String, Field>> {
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (name, spec) in fields {
            let at = format!("{pointer}/{}", escape_pointer_segment(name));
            match self.field(&at, spec, vars) {
                Some(f) => {
                    out.insert(name.clone(), f);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn field(&mut self, pointer: &str, spec: &FieldSpec, vars: &[&str]) -> Option<Field> {
        match spec {
            FieldSpec::Template(text) => self.template(pointer, text, vars).map(Field::Template),
            FieldSpec::Literal(v) => Some(Field::Literal(v.clone())),
            FieldSpec::Object(fields) => self.object(pointer, fields, vars).map(Field::Object),
            FieldSpec::List(items) => {
                let compiled: Vec<Option<Field>> =
                    items.iter().enumerate().map(|(i, f)| self.field(&format!("{pointer}/{i}"), f, vars)).collect();
                compiled.into_iter().collect::<Option<Vec<_>>>().map(Field::List)
            }
            FieldSpec::ForEach(fe) => {
                let path = match JsonPath::parse(&fe.for_each) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        self.report(&format!("{pointer}/for_each"), "jsonpath", e);
                        None
                    }
                };
                let filter = match &fe.filter {
                    Some(f) => self.condition(&format!("{pointer}/filter"), f, ITEM_VARS),
                    None => Some(None),
                };
                let element = match (&fe.fields, &fe.value) {
                    (Some(fields), None) => {
                        self.object(&format!("{pointer}/fields"), fields, ITEM_VARS).map(Field::Object)
                    }
                    (None, Some(value)) => self.field(&format!("{pointer}/value"), value, ITEM_VARS),
                    _ => {
                        self.report(
                            pointer,
                            "schema",
                            "a `for_each` needs exactly one of `fields` (objects) or `value` (plain values)".to_owned(),
                        );
                        None
                    }
                };
                Some(Field::ForEach {
                    path: path?,
                    filter: filter?,
                    element: Box::new(element?),
                    item_reads: Default::default(),
                })
            }
        }
    }
}

fn known_list<'a>(names: impl Iterator<Item = &'a str> + Clone, wanted: &str) -> String {
    let hint = suggest(wanted, names.clone());
    if !hint.is_empty() {
        return hint;
    }
    // Sorted: the names may come from a hash map, and diagnostics must not change between runs.
    let mut all: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    all.sort();
    if all.is_empty() { String::new() } else { format!(" (known: {})", all.join(", ")) }
}

/// Orders pipelines so each comes after its dependencies; reports unknown names and cycles.
fn order_by_dependencies(
    pipelines: Vec<(Pipeline, SourceMap)>,
    names: &HashMap<String, (PathBuf, Position)>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Pipeline> {
    for (p, map) in &pipelines {
        for (i, dep) in p.depends_on.iter().enumerate() {
            if !names.contains_key(dep) {
                let hint = known_list(names.keys().map(String::as_str), dep);
                let pos = map.position(&format!("/depends_on/{i}"));
                diags.push(Diagnostic::new(
                    &p.file,
                    pos,
                    "reference",
                    format!("unknown pipeline `{dep}` in depends_on{hint}"),
                ));
            }
        }
    }
    let mut walk = DependencyWalk {
        index: pipelines.iter().enumerate().map(|(i, (p, _))| (p.name.clone(), i)).collect(),
        pipelines: &pipelines,
        marks: vec![Mark::Unvisited; pipelines.len()],
        stack: Vec::new(),
        order: Vec::new(),
        reported: BTreeSet::new(),
        diags,
    };
    for i in 0..pipelines.len() {
        if walk.marks[i] == Mark::Unvisited {
            walk.visit(i);
        }
    }
    let order = std::mem::take(&mut walk.order);
    let mut slots: Vec<Option<Pipeline>> = pipelines.into_iter().map(|(p, _)| Some(p)).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    Unvisited,
    OnStack,
    Done,
}

/// Depth-first search over `depends_on`: post-order is a valid run order, and meeting a
/// pipeline that is still on the stack closes a cycle, reported at the edge that closes it.
struct DependencyWalk<'a> {
    pipelines: &'a [(Pipeline, SourceMap)],
    index: HashMap<String, usize>,
    marks: Vec<Mark>,
    stack: Vec<usize>,
    order: Vec<usize>,
    /// Cycles already reported, as sorted member lists, so each is reported once.
    reported: BTreeSet<Vec<usize>>,
    diags: &'a mut Vec<Diagnostic>,
}

impl DependencyWalk<'_> {
    fn visit(&mut self, i: usize) {
        self.marks[i] = Mark::OnStack;
        self.stack.push(i);
        let (p, map) = &self.pipelines[i];
        for (d, dep) in p.depends_on.iter().enumerate() {
            let Some(&j) = self.index.get(dep) else { continue };
            match self.marks[j] {
                Mark::Unvisited => self.visit(j),
                // A pipeline depending on itself is reported by the compiler already.
                Mark::OnStack if j != i => {
                    let start = self.stack.iter().position(|&s| s == j).unwrap_or(0);
                    let mut cycle = self.stack[start..].to_vec();
                    let mut members = cycle.clone();
                    members.sort();
                    if self.reported.insert(members) {
                        cycle.push(j);
                        let path: Vec<&str> = cycle.iter().map(|&k| self.pipelines[k].0.name.as_str()).collect();
                        let pos = map.position(&format!("/depends_on/{d}"));
                        let message = format!("dependency cycle: {}", path.join(" → "));
                        self.diags.push(Diagnostic::new(&p.file, pos, "cycle", message));
                    }
                }
                Mark::OnStack | Mark::Done => {}
            }
        }
        self.stack.pop();
        self.marks[i] = Mark::Done;
        self.order.push(i);
    }
}

/// Loads every project a path names: a project file, a project directory, a pipeline file (its
/// project), or a directory of projects. Diagnostics for paths that hold no project too.
pub fn projects_at(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    // `./x` and `x` name the same file; diagnostics should print it one way.
    let path: PathBuf = path.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect();
    let path = if path.as_os_str().is_empty() { Path::new(".") } else { path.as_path() };
    if !path.exists() {
        return Err(Diagnostic::file(path, "io", "no such file or directory"));
    }
    if path.is_dir() && !path.join(PROJECT_FILE).is_file() {
        let found = find_project_files(path);
        if found.is_empty() {
            return Err(Diagnostic::file(path, "io", format!("no {PROJECT_FILE} at or below this directory")));
        }
        return Ok(found);
    }
    find_project_file(path)
        .map(|p| vec![p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect()])
        .ok_or_else(|| Diagnostic::file(path, "io", format!("no {PROJECT_FILE} here or in a parent directory")))
}

/// A cheap, shareable handle for code that needs the connectors and a loaded project.
pub type SharedProject = Arc<Project>;
