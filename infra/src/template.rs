//! Reading template.yaml: the single source of truth for resources and routes.
//!
//! The local bootstrap creates resources from the resource properties found here and the local gateway
//! routes by the functions' `HttpApi` events, so neither keeps a second copy that could drift.
//! CloudFormation intrinsics (`!Ref`, `!GetAtt`, `!Sub`, and their long forms) are resolved against
//! the physical ids the local stack knows.

use serde_norway::{Mapping, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use thiserror::Error;

/// Where `cargo lambda build` leaves each function's `bootstrap` (`target/arm64/lambda/<crate>/`), the
/// folder a function's `CodeUri` names: `sam deploy` zips it as it is, nothing is built twice.
pub const LAMBDA_BUILD_DIR: &str = "target/arm64/lambda/";

/// Why the template could not be read or resolved.
#[derive(Debug, Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("template.yaml: {0}")]
    Shape(String),
    #[error("template.yaml refers to {0}, which the local stack does not know")]
    Unresolved(String),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
}

/// One HTTP route of a function, as its `HttpApi` event declares it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteSpec {
    /// `GET`, `POST`, … or `ANY`.
    pub method: String,
    /// `/v1/agencies/{id}`.
    pub path: String,
    /// False when the event sets `Auth: Authorizer: NONE`.
    pub authenticated: bool,
}

impl RouteSpec {
    /// API Gateway's route key, `METHOD /path`.
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A Lambda function of the template.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// Logical id, e.g. `RegistrationFunction`.
    pub logical_id: String,
    /// The cargo binary (from `CodeUri: target/arm64/lambda/<crate>/`): the crate whose router serves it.
    pub binary: String,
    /// Its HTTP routes (empty for scheduled jobs).
    pub routes: Vec<RouteSpec>,
}

/// Values the intrinsics resolve to.
pub trait Resolve {
    /// `!Ref name`: a parameter, a pseudo parameter or a resource's physical id.
    fn reference(&self, name: &str) -> Option<String>;
    /// `!GetAtt name.attribute`.
    fn attribute(&self, name: &str, attribute: &str) -> Option<String>;
    /// The expression of the template's condition `name` (what `!If` branches on); none by default.
    fn condition(&self, _name: &str) -> Option<Value> {
        None
    }
}

impl Template {
    /// Reads and parses the template at `path`.
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses template text.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let root: Value = serde_norway::from_str(text)?;
        if root.get("Resources").and_then(Value::as_mapping).is_none() {
            return Err(TemplateError::Shape("no Resources section".into()));
        }
        Ok(Self { root })
    }

    /// Logical ids and definitions of every resource, in file order.
    pub fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.root
            .get("Resources")
            .and_then(Value::as_mapping)
            .into_iter()
            .flat_map(Mapping::iter)
            .filter_map(|(key, value)| Some((key.as_str()?, value)))
    }

    /// Resources of one CloudFormation type, with their `Properties`.
    pub fn resources_of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources()
            .filter(move |(_, resource)| resource.get("Type").and_then(Value::as_str) == Some(kind))
            .map(|(id, resource)| (id, resource.get("Properties").unwrap_or(&Value::Null)))
    }

    /// Parameter defaults (`Parameters.X.Default`).
    pub fn parameter_defaults(&self) -> HashMap<String, String> {
        self.root
            .get("Parameters")
            .and_then(Value::as_mapping)
            .into_iter()
            .flat_map(Mapping::iter)
            .filter_map(|(name, spec)| {
                let default = spec.get("Default")?;
                let value = match default {
                    Value::String(text) => text.clone(),
                    Value::Number(number) => number.to_string(),
                    Value::Bool(flag) => flag.to_string(),
                    _ => return None,
                };
                Some((name.as_str()?.to_owned(), value))
            })
            .collect()
    }

    /// `Globals.Function`: the settings every function shares (runtime, tracing, environment).
    pub fn globals_function(&self) -> Option<&Value> {
        self.root.get("Globals").and_then(|g| g.get("Function"))
    }

    /// Every `AWS::Serverless::Function` with its binary and HTTP routes.
    pub fn functions(&self) -> Result<Vec<FunctionSpec>, TemplateError> {
        let mut functions = Vec::new();
        for (logical_id, resource) in self.resources() {
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            // Each function's code is the folder `cargo xtask build` leaves for its crate.
            let binary = resource
                .get("Properties")
                .and_then(|p| p.get("CodeUri"))
                .and_then(Value::as_str)
                .and_then(|uri| uri.strip_prefix(LAMBDA_BUILD_DIR))
                .map(|rest| rest.trim_end_matches('/'))
                .filter(|name| !name.is_empty() && !name.contains('/'))
                .ok_or_else(|| {
                    TemplateError::Shape(format!("{logical_id} has no CodeUri {LAMBDA_BUILD_DIR}<crate>/"))
                })?;
            let mut routes = Vec::new();
            let events = resource
                .get("Properties")
                .and_then(|p| p.get("Events"))
                .and_then(Value::as_mapping);
            for (event_name, event) in events.into_iter().flat_map(Mapping::iter) {
                if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                    continue;
                }
                let properties = event.get("Properties");
                let field = |name: &str| {
                    properties
                        .and_then(|p| p.get(name))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            TemplateError::Shape(format!(
                                "{logical_id} event {:?} has no {name}",
                                event_name.as_str().unwrap_or("?")
                            ))
                        })
                };
                let authorizer = properties
                    .and_then(|p| p.get("Auth"))
                    .and_then(|a| a.get("Authorizer"))
                    .and_then(Value::as_str);
                routes.push(RouteSpec {
                    method: field("Method")?.to_ascii_uppercase(),
                    path: field("Path")?,
                    authenticated: authorizer != Some("NONE"),
                });
            }
            routes.sort();
            functions.push(FunctionSpec {
                logical_id: logical_id.to_owned(),
                binary: binary.to_owned(),
                routes,
            });
        }
        Ok(functions)
    }

    /// The environment every function gets (`Globals.Function.Environment.Variables`) merged with the
    /// function's own `Environment.Variables`, resolved.
    pub fn function_environment(
        &self,
        logical_id: &str,
        resolver: &dyn Resolve,
    ) -> Result<BTreeMap<String, String>, TemplateError> {
        let globals = self.root.get("Globals").and_then(|g| g.get("Function"));
        let own = self
            .resources()
            .find(|(id, _)| *id == logical_id)
            .and_then(|(_, r)| r.get("Properties"));
        let mut environment = BTreeMap::new();
        for source in [globals, own].into_iter().flatten() {
            let variables = source
                .get("Environment")
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_mapping);
            for (name, value) in variables.into_iter().flat_map(Mapping::iter) {
                if let Some(name) = name.as_str() {
                    environment.insert(name.to_owned(), resolve(value, resolver)?);
                }
            }
        }
        Ok(environment)
    }

    /// The expression of condition `name` in the template's `Conditions`.
    pub fn condition(&self, name: &str) -> Option<Value> {
        self.root.get("Conditions")?.get(name).cloned()
    }

    /// A function's numeric setting (`MemorySize`, `Timeout`): its own, else `Globals.Function`'s.
    pub fn function_number(&self, logical_id: &str, setting: &str) -> Option<u64> {
        let own = self
            .resources()
            .find(|(id, _)| *id == logical_id)
            .and_then(|(_, r)| r.get("Properties"))
            .and_then(|p| p.get(setting));
        let global = self
            .root
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get(setting));
        own.or(global).and_then(Value::as_u64)
    }

    /// The HTTP API's JWT authorizer: resolved issuer and audiences.
    pub fn jwt_authorizer(&self, resolver: &dyn Resolve) -> Result<(String, Vec<String>), TemplateError> {
        let (_, api) = self
            .resources_of_type("AWS::Serverless::HttpApi")
            .next()
            .ok_or_else(|| TemplateError::Shape("no AWS::Serverless::HttpApi".into()))?;
        let auth = api
            .get("Auth")
            .ok_or_else(|| TemplateError::Shape("the HttpApi has no Auth".into()))?;
        let default = auth
            .get("DefaultAuthorizer")
            .and_then(Value::as_str)
            .ok_or_else(|| TemplateError::Shape("the HttpApi has no DefaultAuthorizer".into()))?;
        let jwt = auth
            .get("Authorizers")
            .and_then(|a| a.get(default))
            .and_then(|a| a.get("JwtConfiguration"))
            .ok_or_else(|| TemplateError::Shape(format!("authorizer {default} has no JwtConfiguration")))?;
        let issuer = resolve(jwt.get("issuer").unwrap_or(&Value::Null), resolver)?;
        let audiences = jwt
            .get("audience")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .map(|value| resolve(value, resolver))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((issuer, audiences))
    }
}

/// Resolves a scalar property: a string, a number, or an intrinsic function.
pub fn resolve(value: &Value, resolver: &dyn Resolve) -> Result<String, TemplateError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        Value::Tagged(tagged) => intrinsic(
            tagged.tag.to_string().trim_start_matches('!'),
            &tagged.value,
            resolver,
        ),
        Value::Mapping(mapping) if mapping.len() == 1 => {
            let (name, argument) = mapping.iter().next().ok_or_else(|| unsupported(value))?;
            let name = name.as_str().ok_or_else(|| unsupported(value))?;
            intrinsic(name.trim_start_matches("Fn::"), argument, resolver)
        }
        other => Err(unsupported(other)),
    }
}

fn intrinsic(name: &str, argument: &Value, resolver: &dyn Resolve) -> Result<String, TemplateError> {
    match (name, argument) {
        ("Ref", Value::String(target)) => resolver
            .reference(target)
            .ok_or_else(|| TemplateError::Unresolved(format!("!Ref {target}"))),
        ("GetAtt", Value::String(dotted)) => {
            let (target, attribute) = dotted
                .split_once('.')
                .ok_or_else(|| TemplateError::Shape(format!("!GetAtt {dotted}")))?;
            get_att(target, attribute, resolver)
        }
        ("GetAtt", Value::Sequence(parts)) if parts.len() == 2 => {
            let target = parts[0].as_str().ok_or_else(|| unsupported(argument))?;
            let attribute = parts[1].as_str().ok_or_else(|| unsupported(argument))?;
            get_att(target, attribute, resolver)
        }
        ("Sub", Value::String(text)) => substitute(text, resolver),
        ("If", Value::Sequence(parts)) if parts.len() == 3 => {
            let name = parts[0].as_str().ok_or_else(|| unsupported(argument))?;
            let holds = holds(name, resolver)?;
            resolve(if holds { &parts[1] } else { &parts[2] }, resolver)
        }
        _ => Err(TemplateError::Shape(format!(
            "intrinsic {name} with {argument:?} is not supported locally"
        ))),
    }
}

/// Whether the template's condition `name` holds (`!Equals`, `!Not`, `!And`, `!Or`, `!Condition`).
fn holds(name: &str, resolver: &dyn Resolve) -> Result<bool, TemplateError> {
    let expression = resolver
        .condition(name)
        .ok_or_else(|| TemplateError::Unresolved(format!("condition {name}")))?;
    evaluate(&expression, resolver)
}

fn evaluate(expression: &Value, resolver: &dyn Resolve) -> Result<bool, TemplateError> {
    let (name, argument) = match expression {
        Value::Tagged(tagged) => (
            tagged.tag.to_string().trim_start_matches('!').to_owned(),
            &tagged.value,
        ),
        Value::Mapping(mapping) if mapping.len() == 1 => {
            let (name, argument) = mapping.iter().next().ok_or_else(|| unsupported(expression))?;
            let name = name.as_str().ok_or_else(|| unsupported(expression))?;
            (name.trim_start_matches("Fn::").to_owned(), argument)
        }
        other => return Err(unsupported(other)),
    };
    let list = || argument.as_sequence().ok_or_else(|| unsupported(argument));
    match name.as_str() {
        "Equals" => match list()?.as_slice() {
            [a, b] => Ok(resolve(a, resolver)? == resolve(b, resolver)?),
            _ => Err(unsupported(argument)),
        },
        "Not" => match list()?.as_slice() {
            [inner] => Ok(!evaluate(inner, resolver)?),
            _ => Err(unsupported(argument)),
        },
        "And" => list()?
            .iter()
            .try_fold(true, |all, c| Ok(all && evaluate(c, resolver)?)),
        "Or" => list()?
            .iter()
            .try_fold(false, |any, c| Ok(any || evaluate(c, resolver)?)),
        "Condition" => holds(argument.as_str().ok_or_else(|| unsupported(argument))?, resolver),
        _ => Err(unsupported(expression)),
    }
}

fn get_att(target: &str, attribute: &str, resolver: &dyn Resolve) -> Result<String, TemplateError> {
    resolver
        .attribute(target, attribute)
        .ok_or_else(|| TemplateError::Unresolved(format!("!GetAtt {target}.{attribute}")))
}

/// `!Sub` with `${Name}` and `${Name.Attribute}` placeholders (`${!Literal}` escapes).
fn substitute(text: &str, resolver: &dyn Resolve) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| TemplateError::Shape(format!("unclosed ${{ in {text:?}")))?;
        let name = &after[..end];
        if let Some(literal) = name.strip_prefix('!') {
            out.push_str("${");
            out.push_str(literal);
            out.push('}');
        } else if let Some((target, attribute)) =
            name.split_once('.').filter(|(t, _)| !t.starts_with("AWS::"))
        {
            out.push_str(&get_att(target, attribute, resolver)?);
        } else {
            out.push_str(
                &resolver
                    .reference(name)
                    .ok_or_else(|| TemplateError::Unresolved(format!("${{{name}}}")))?,
            );
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn unsupported(value: &Value) -> TemplateError {
    TemplateError::Shape(format!("cannot resolve {value:?} to a string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl Resolve for Fake {
        fn reference(&self, name: &str) -> Option<String> {
            match name {
                "AWS::Region" => Some("us-east-1".into()),
                "Pool" => Some("us-east-1_abc".into()),
                "Domain" => Some(String::new()),
                _ => None,
            }
        }
        fn attribute(&self, name: &str, attribute: &str) -> Option<String> {
            (name == "Key" && attribute == "Arn").then(|| "arn:aws:kms:us-east-1:1:key/k".into())
        }
        fn condition(&self, name: &str) -> Option<Value> {
            let conditions: Value = serde_norway::from_str(
                "HasDomain: !Not [!Equals [!Ref Domain, \"\"]]\nIsPool: !Equals [!Ref Pool, us-east-1_abc]\n\
                 Both: !And [!Condition IsPool, {'Fn::Not': [{Condition: HasDomain}]}]\n",
            )
            .ok()?;
            conditions.get(name).cloned()
        }
    }

    #[test]
    fn resolves_if_by_the_templates_conditions() {
        let doc: Value = serde_norway::from_str(
            "a: !If [HasDomain, !Sub 'https://${Domain}', !GetAtt Key.Arn]\nb: !If [Both, yes, no]\n\
             c: !If [Missing, yes, no]\n",
        )
        .expect("yaml");
        let get = |k: &str| resolve(doc.get(k).expect("key"), &Fake);
        assert_eq!(get("a").expect("resolves"), "arn:aws:kms:us-east-1:1:key/k");
        assert_eq!(get("b").expect("resolves"), "yes");
        assert!(matches!(get("c"), Err(TemplateError::Unresolved(_))));
    }

    #[test]
    fn resolves_short_and_long_intrinsics() {
        let doc: Value = serde_norway::from_str(
            "a: !Ref Pool\nb: {Ref: Pool}\nc: !GetAtt Key.Arn\nd: {'Fn::GetAtt': [Key, Arn]}\n\
             e: !Sub https://cognito-idp.${AWS::Region}.amazonaws.com/${Pool}\nf: !Sub '${Key.Arn}/x ${!Literal}'\n",
        )
        .expect("yaml");
        let get = |k: &str| resolve(doc.get(k).expect("key"), &Fake).expect("resolves");
        assert_eq!(get("a"), "us-east-1_abc");
        assert_eq!(get("b"), "us-east-1_abc");
        assert_eq!(get("c"), "arn:aws:kms:us-east-1:1:key/k");
        assert_eq!(get("d"), "arn:aws:kms:us-east-1:1:key/k");
        assert_eq!(
            get("e"),
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc"
        );
        assert_eq!(get("f"), "arn:aws:kms:us-east-1:1:key/k/x ${Literal}");
    }

    #[test]
    fn unknown_reference_is_an_error_not_a_blank() {
        let doc: Value = serde_norway::from_str("a: !Ref Missing").expect("yaml");
        assert!(matches!(
            resolve(doc.get("a").expect("a"), &Fake),
            Err(TemplateError::Unresolved(_))
        ));
    }

    #[test]
    fn reads_routes_and_auth_from_the_project_template() {
        let template = Template::load(&crate::repo_root().join("template.yaml")).expect("template.yaml");
        let functions = template.functions().expect("functions");
        let privacy = functions
            .iter()
            .find(|f| f.binary == "privacy")
            .expect("privacy function");
        let policy = privacy
            .routes
            .iter()
            .find(|r| r.path == "/v1/privacy/policy")
            .expect("policy route");
        assert!(!policy.authenticated, "the policy text is public");
        assert!(privacy.routes.iter().any(|r| r.authenticated));
        let retention = functions
            .iter()
            .find(|f| f.binary == "retention")
            .expect("retention function");
        assert!(retention.routes.is_empty(), "retention is a scheduled job");
    }
}
