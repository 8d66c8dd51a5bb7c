//! `breakwater-cli`: validate policies and WasmPlugins, print the policy's JSON Schema, write the
//! OCI image Istio pulls, and keep the example manifests' sha256 pins current.
//!
//! Exit codes: 0 success; 1 a policy is invalid or a check found a difference; 2 a file could
//! not be read or understood, or the build failed.

use breakwater_cli::{envoy_config, istio, oci, paths, pin, schema, validate};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "Operator tooling for the Breakwater filter")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check policies with the filter's own parser: policy JSON files, or manifests whose
    /// WasmPlugins carry the policy in `pluginConfig`.
    Validate {
        /// Policy JSON files or WasmPlugin YAML manifests.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
        /// The Istio release the manifests are for (`1.26`): a manifest that release would
        /// refuse (`failStrategy: FAIL_RELOAD` before 1.27) is invalid.
        #[arg(long, value_name = "VERSION")]
        istio: Option<breakwater_cli::versions::IstioVersion>,
    },
    /// Print the policy's JSON Schema, or write or check examples/policy.schema.json.
    Schema {
        /// Write examples/policy.schema.json.
        #[arg(long, conflicts_with = "check")]
        write: bool,
        /// Exit 1 if examples/policy.schema.json differs from the code's schema.
        #[arg(long)]
        check: bool,
    },
    /// Build the filter and write its OCI image (Istio's Wasm compat variant) as an OCI image
    /// layout that skopeo, crane or oras can push.
    Oci {
        /// The layout directory [default: target/oci/breakwater].
        #[arg(long)]
        out: Option<PathBuf>,
        /// The tag the layout gives the image.
        #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
        tag: String,
        /// Package this .wasm instead of building the current one.
        #[arg(long)]
        wasm: Option<PathBuf>,
    },
    /// Rewrite the sha256 pins in examples/istio/*.yaml to the current build.
    Pin {
        /// Change nothing; exit 1 if a pin is not the current build's.
        #[arg(long)]
        check: bool,
    },
}

/// A failure: a message and the exit code.
struct Failure(u8, String);

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Validate {
            files,
            strict,
            istio,
        } => validate_files(&files, strict, istio),
        Command::Schema { write, check } => schema_command(write, check),
        Command::Oci { out, tag, wasm } => oci_command(out, &tag, wasm),
        Command::Pin { check } => pin_command(check),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}

fn validate_files(
    files: &[PathBuf],
    strict: bool,
    istio: Option<breakwater_cli::versions::IstioVersion>,
) -> Result<(), Failure> {
    let (mut invalid, mut unreadable) = (0, 0);
    for file in files {
        let shown = file.display().to_string();
        if let Some(chains) = envoy_chains(file) {
            print!("{}", envoy_config::render(&shown, &chains));
            invalid += chains
                .iter()
                .filter(|c| !c.errors.is_empty() || (strict && !c.warnings.is_empty()))
                .count();
            continue;
        }
        match validate::check_file_for(file, istio) {
            Ok(checked) => {
                print!("{}", validate::render(&shown, &checked));
                invalid += checked
                    .iter()
                    .filter(|c| !c.is_valid() || (strict && !c.warnings().is_empty()))
                    .count();
            }
            Err(error) => {
                println!("{shown}: cannot check: {error}");
                unreadable += 1;
            }
        }
    }
    if unreadable > 0 {
        Err(Failure(
            2,
            format!("{unreadable} file(s) could not be checked"),
        ))
    } else if invalid > 0 {
        let what = if strict {
            "invalid or warned"
        } else {
            "invalid"
        };
        Err(Failure(1, format!("{invalid} policy(ies) {what}")))
    } else {
        Ok(())
    }
}

/// The Envoy config checks of `file`, if it is an Envoy config.
fn envoy_chains(file: &std::path::Path) -> Option<Vec<envoy_config::Chain>> {
    let text = std::fs::read_to_string(file).ok()?;
    let documents = istio::documents(&text).ok()?;
    envoy_config::check(&documents)
}

fn schema_command(write: bool, check: bool) -> Result<(), Failure> {
    let text = schema::text();
    let path = paths::schema();
    let shown = paths::shown(&path);
    if write {
        std::fs::write(&path, &text).map_err(|e| Failure(2, format!("{shown}: {e}")))?;
        println!("wrote {shown}");
    } else if check {
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != text {
            return Err(Failure(
                1,
                format!(
                    "{shown} is not the schema of the current policy types: \
                     run `cargo run -p breakwater-cli -- schema --write`"
                ),
            ));
        }
        println!("{shown} is current");
    } else {
        print!("{text}");
    }
    Ok(())
}

fn oci_command(out: Option<PathBuf>, tag: &str, wasm: Option<PathBuf>) -> Result<(), Failure> {
    let image = match wasm {
        Some(path) => std::fs::read(&path)
            .map_err(|e| Failure(2, format!("{}: {e}", path.display())))
            .and_then(|bytes| oci::build_image(&bytes).map_err(|e| Failure(2, e.to_string())))?,
        None => pin::current_image().map_err(|e| Failure(2, e.to_string()))?,
    };
    let dir = out.unwrap_or_else(paths::oci_layout);
    oci::write_layout(&image, &dir, tag).map_err(|e| Failure(2, e.to_string()))?;
    // Read it back as a registry client would, so a broken layout never leaves this command.
    let read = oci::read_layout(&dir).map_err(|e| Failure(2, e.to_string()))?;
    let shown = paths::shown(&dir);
    println!("wrote the OCI image layout {shown} (tag {tag})");
    println!(
        "  image digest, the WasmPlugin sha256 for oci:// urls: {}",
        read.digest
    );
    println!(
        "  plugin.wasm sha256, the WasmPlugin sha256 for http(s):// urls: {}",
        image.wasm_sha256
    );
    println!("push it with one of:");
    println!(
        "  skopeo copy --preserve-digests oci:{shown}:{tag} docker://REGISTRY/breakwater:{tag}"
    );
    println!("  crane push {shown} REGISTRY/breakwater:{tag}");
    println!("  oras cp --from-oci-layout {shown}:{tag} REGISTRY/breakwater:{tag}");
    println!("(a tag of this build's own, so that the registry keeps it), and name it by digest:");
    println!("  url: oci://REGISTRY/breakwater@sha256:{}", read.digest);
    Ok(())
}

fn pin_command(check: bool) -> Result<(), Failure> {
    let pins = pin::Pins::current().map_err(|e| Failure(2, e.to_string()))?;
    let manifests = pin::manifests().map_err(|e| Failure(2, e.to_string()))?;
    let mut stale = Vec::new();
    for path in &manifests {
        if pin::pin_file(path, &pins, !check).map_err(|e| Failure(2, e.to_string()))? {
            stale.push(paths::shown(path));
        }
    }
    println!(
        "image digest {}, plugin.wasm sha256 {}",
        pins.image, pins.module
    );
    if check && !stale.is_empty() {
        return Err(Failure(
            1,
            format!(
                "not pinned to the current build: {}; run `cargo run -p breakwater-cli -- pin`",
                stale.join(", ")
            ),
        ));
    }
    let verb = if check { "current" } else { "pinned" };
    println!("{} manifest(s) {verb}", manifests.len());
    Ok(())
}
