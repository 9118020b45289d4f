//! `$metadata`: a CSDL (EDMX 4.0) document generated from the same tables the sandbox serves, in
//! the real document's layout — namespace `Microsoft.NAV`, enums with XML-encoded member names,
//! entity types, the bound `post` action, an `NAV` container whose entity sets carry the
//! Capabilities annotations (ChangeTracking unsupported, Insert/Update/Delete restrictions,
//! sortable). Only what is served is declared, so a generic OData client sees the truth.

use std::fmt::Write as _;

use crate::schema::{EntityType, Route};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

fn entity_type(out: &mut String, ty: &EntityType, route: Route) {
    let _ = writeln!(out, "            <EntityType Name=\"{}\">", ty.name);
    let _ = writeln!(
        out,
        "                <Key>\n                    <PropertyRef Name=\"{}\" />\n                </Key>",
        ty.key
    );
    for p in ty.props {
        let mut attrs = format!("Name=\"{}\" Type=\"{}\"", p.name, escape(&p.ty.type_name()));
        if p.not_null {
            attrs.push_str(" Nullable=\"false\"");
        }
        if let Some(max) = p.max {
            let _ = write!(attrs, " MaxLength=\"{max}\"");
        }
        if p.ty == crate::schema::Edm::Decimal {
            attrs.push_str(" Scale=\"Variable\"");
        }
        let _ = writeln!(out, "                <Property {attrs} />");
    }
    for nav in ty.navs {
        let ty_name = if nav.many {
            format!("Collection(Microsoft.NAV.{})", nav.target)
        } else {
            format!("Microsoft.NAV.{}", nav.target)
        };
        match nav.constraint {
            Some((local, referenced)) => {
                let _ = writeln!(
                    out,
                    "                <NavigationProperty Name=\"{}\" Type=\"{ty_name}\" ContainsTarget=\"true\">\n                    <ReferentialConstraint Property=\"{local}\" ReferencedProperty=\"{referenced}\" />\n                </NavigationProperty>",
                    nav.name
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "                <NavigationProperty Name=\"{}\" Type=\"{ty_name}\" ContainsTarget=\"true\" />",
                    nav.name
                );
            }
        }
    }
    if ty.name == "company" {
        for target in route.types().iter().filter(|t| route.company_set(t.set).is_some()) {
            let _ = writeln!(
                out,
                "                <NavigationProperty Name=\"{}\" Type=\"Collection(Microsoft.NAV.{})\" ContainsTarget=\"true\" />",
                target.set, target.name
            );
        }
    }
    let _ = writeln!(out, "            </EntityType>");
}

fn annotation(out: &mut String, term: &str, property: &str, value: bool) {
    let _ = writeln!(
        out,
        "                    <Annotation Term=\"Org.OData.Capabilities.V1.{term}\">\n                        <Record>\n                            <PropertyValue Property=\"{property}\" Bool=\"{value}\" />\n                        </Record>\n                    </Annotation>"
    );
}

/// The document for a route.
pub(crate) fn document(route: Route) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<edmx:Edmx Version=\"4.0\" xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\">\n    <edmx:DataServices>\n        <Schema Namespace=\"Microsoft.NAV\" xmlns=\"http://docs.oasis-open.org/odata/ns/edm\">\n",
    );
    for e in route.enums() {
        let _ = writeln!(out, "            <EnumType Name=\"{}\">", e.name);
        for (name, value) in e.members {
            let _ = writeln!(out, "                <Member Name=\"{name}\" Value=\"{value}\" />");
        }
        let _ = writeln!(out, "            </EnumType>");
    }
    for ty in route.types() {
        entity_type(&mut out, ty, route);
    }
    if route == Route::V2 {
        out.push_str(
            "            <Action Name=\"post\" IsBound=\"true\">\n                <Parameter Name=\"bindingParameter\" Type=\"Microsoft.NAV.salesInvoice\" />\n            </Action>\n",
        );
    }
    out.push_str("            <EntityContainer Name=\"NAV\">\n");
    for ty in route.types() {
        let _ =
            writeln!(out, "                <EntitySet Name=\"{}\" EntityType=\"Microsoft.NAV.{}\">", ty.set, ty.name);
        annotation(&mut out, "ChangeTracking", "Supported", false);
        annotation(&mut out, "DeleteRestrictions", "Deletable", ty.deletable);
        annotation(&mut out, "InsertRestrictions", "Insertable", ty.insertable);
        annotation(&mut out, "UpdateRestrictions", "Updatable", ty.updatable);
        annotation(&mut out, "SortRestrictions", "Sortable", true);
        let _ = writeln!(out, "                </EntitySet>");
    }
    out.push_str("            </EntityContainer>\n        </Schema>\n    </edmx:DataServices>\n</edmx:Edmx>\n");
    out
}
