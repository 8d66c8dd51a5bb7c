//! The image round trip through a real registry, and the rollout and rollback of two builds.
//!
//! A CNCF distribution registry (Debian's `docker-registry`) runs on a local port; `skopeo`
//! pushes the OCI layouts that `breakwater-cli oci` writes; the image is pulled back the way
//! istio-agent pulls it (Istio's `pkg/wasm/imagefetcher.go`: the manifest by the url's tag or
//! digest, its digest compared with `spec.sha256`, then `plugin.wasm` out of the last layer,
//! which must be `application/vnd.oci.image.layer.v1.tar+gzip` for the compat variant). Two
//! builds show why `pin` names the image by digest: the second build moves the tag, and a
//! manifest of the first still gets the first build.
//!
//! Needs the Debian packages `docker-registry` and `skopeo`: installed on first use with
//! `apt-get` when the test runs as root (as CI does), else the test fails saying so.

use breakwater_cli::oci::{self, sha256_hex, Image};
use breakwater_cli::paths;
use breakwater_cli::pin::{self, Pins};
use flate2::read::GzDecoder;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The compat variant's layer media type (`types.OCILayer` in Istio's fetcher).
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A registry on a free local port, stopped when dropped.
struct Registry {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// Installs `docker-registry` and `skopeo` from Debian's packages if either is missing.
fn ensure_tools() {
    let found = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if found("docker-registry") && found("skopeo") {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    assert!(
        root,
        "the registry round trip needs Debian's docker-registry and skopeo: \
         apt-get install docker-registry skopeo"
    );
    eprintln!("installing the Debian packages docker-registry and skopeo");
    for args in [
        &["update", "-qq"][..],
        &[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "docker-registry",
            "skopeo",
        ][..],
    ] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .expect("apt-get runs");
        assert!(status.success(), "apt-get {args:?} failed");
    }
}

impl Registry {
    fn start() -> Registry {
        ensure_tools();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let config = dir.path().join("config.yml");
        let storage = dir.path().join("data");
        let text = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {addr}\n",
            storage.display()
        );
        std::fs::write(&config, text).expect("the registry's config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("a log file");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("docker-registry must run (Debian package docker-registry): {e}")
            });
        let registry = Registry {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_get(addr, "/v2/", &[]).map(|r| r.status).ok() != Some(200) {
            assert!(
                Instant::now() < deadline,
                "the registry did not answer /v2/ in time"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// Pushes the OCI layout at `layout` (tag `0.1.0`) as `breakwater/breakwater:<tag>`, as the
    /// README says: with skopeo, keeping the manifest's bytes and so its digest.
    fn push(&self, layout: &Path, tag: &str) {
        let output = Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--preserve-digests",
            ])
            .arg(format!("oci:{}:0.1.0", layout.display()))
            .arg(format!(
                "docker://{}/breakwater/breakwater:{tag}",
                self.addr
            ))
            .output()
            .unwrap_or_else(|e| panic!("skopeo must run (Debian package skopeo): {e}"));
        assert!(
            output.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response: status, headers (names lower-cased) and body.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(n, _)| n == name);
        found.map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 GET (the registry serves no TLS here), read to the connection's end.
fn http_get(addr: SocketAddr, path: &str, accept: &[&str]) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !accept.is_empty() {
        request.push_str(&format!("Accept: {}\r\n", accept.join(", ")));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = raw[split + 4..].to_vec();
    let response = Response {
        status,
        headers,
        body,
    };
    assert_ne!(
        response.header("transfer-encoding"),
        Some("chunked"),
        "this client reads bodies with a length only"
    );
    Ok(response)
}

/// What istio-agent gets for an `oci://` url: the manifest's digest and `plugin.wasm`.
struct Pulled {
    digest: String,
    wasm: Vec<u8>,
}

/// Pulls `breakwater/breakwater` by `reference` (`:tag` or `@sha256:...`) as istio-agent does.
fn pull(registry: &Registry, reference: &str) -> Pulled {
    let accept = [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ];
    let path = format!("/v2/breakwater/breakwater/manifests/{reference}");
    let manifest = http_get(registry.addr, &path, &accept).expect("the manifest");
    assert_eq!(manifest.status, 200, "{path}: {manifest:?}");
    let digest = sha256_hex(&manifest.body);
    let header = manifest.header("docker-content-digest").unwrap_or_default();
    assert_eq!(
        header,
        format!("sha256:{digest}"),
        "the registry's digest is the bytes'"
    );
    if let Some(pinned) = reference.strip_prefix("sha256:") {
        assert_eq!(
            digest, pinned,
            "a digest reference gets exactly that manifest"
        );
    }
    let parsed: Value = serde_json::from_slice(&manifest.body).expect("a JSON manifest");
    let layers = parsed["layers"].as_array().expect("layers");
    let layer = layers
        .last()
        .expect("at least one layer, as the fetcher requires");
    assert_eq!(layer["mediaType"], OCI_LAYER, "the compat variant's layer");
    let layer_digest = layer["digest"].as_str().expect("a layer digest");
    let blob_path = format!("/v2/breakwater/breakwater/blobs/{layer_digest}");
    let blob = http_get(registry.addr, &blob_path, &[]).expect("the layer");
    assert_eq!(blob.status, 200, "{blob_path}");
    assert_eq!(format!("sha256:{}", sha256_hex(&blob.body)), layer_digest);
    Pulled {
        digest,
        wasm: plugin_wasm(&blob.body),
    }
}

/// `plugin.wasm` out of a tar+gzip layer, found by its base name as the fetcher finds it.
fn plugin_wasm(layer: &[u8]) -> Vec<u8> {
    let mut archive = tar::Archive::new(GzDecoder::new(layer));
    for entry in archive.entries().expect("a tar.gz layer") {
        let mut entry = entry.expect("a tar entry");
        let path = entry.path().expect("a path").into_owned();
        if path.file_name().is_some_and(|n| n == oci::WASM_FILE) {
            let mut wasm = Vec::new();
            entry.read_to_end(&mut wasm).expect("plugin.wasm");
            return wasm;
        }
    }
    panic!("no {} in the layer", oci::WASM_FILE);
}

/// The mesh-wide example manifest pinned to `image`, its registry replaced by `registry`: what
/// `pin` writes for that build. Returns the url's reference and `spec.sha256`.
fn pinned_manifest(registry: &Registry, image: &Image) -> (String, String) {
    let text = std::fs::read_to_string(paths::istio().join("mesh-default.yaml")).unwrap();
    let local = text.replace("registry.example.com", &registry.addr.to_string());
    let manifest = pin::repin(&local, &Pins::of(image));
    let [plugin] = pin::pinned(&manifest)
        .unwrap()
        .try_into()
        .expect("one WasmPlugin");
    let url = plugin.url.expect("a url");
    let prefix = format!("oci://{}/breakwater/breakwater@", registry.addr);
    let reference = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
    (reference.to_string(), plugin.image.expect("a sha256"))
}

fn layout(image: &Image) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    oci::write_layout(image, dir.path(), "0.1.0").expect("the layout");
    dir
}

#[test]
fn two_builds_roll_out_and_back_by_digest_through_a_real_registry() {
    let first = std::fs::read(breakwater_wasm::breakwater().expect("the filter builds")).unwrap();
    // A second, different build of the filter: the same sources with a test feature.
    let second_path = breakwater_wasm::build_with_features("breakwater", &["test-trap"]);
    let second = std::fs::read(second_path.expect("the second build")).unwrap();
    let (a, b) = (
        oci::build_image(&first).unwrap(),
        oci::build_image(&second).unwrap(),
    );
    assert_ne!(a.digest(), b.digest(), "two builds, two images");
    let (layout_a, layout_b) = (layout(&a), layout(&b));
    let registry = Registry::start();

    // Build A: pushed under the shared tag and a tag of its own; its manifest names its digest.
    registry.push(layout_a.path(), "0.1.0");
    registry.push(layout_a.path(), &format!("build-{}", &a.digest()[..12]));
    let (reference_a, sha256_a) = pinned_manifest(&registry, &a);
    assert_eq!(reference_a, format!("sha256:{}", a.digest()));
    let pulled = pull(&registry, &reference_a);
    assert_eq!(
        pulled.digest, sha256_a,
        "the pulled manifest's digest is the pinned sha256"
    );
    assert!(
        pulled.wasm == first,
        "plugin.wasm is build A, byte for byte"
    );
    assert_eq!(
        sha256_hex(&pulled.wasm),
        a.wasm_sha256,
        "the annotated module sha256"
    );

    // Build B rolls out: the shared tag moves to it.
    registry.push(layout_b.path(), "0.1.0");
    registry.push(layout_b.path(), &format!("build-{}", &b.digest()[..12]));
    let (reference_b, sha256_b) = pinned_manifest(&registry, &b);
    let pulled = pull(&registry, &reference_b);
    assert_eq!(pulled.digest, sha256_b);
    assert!(pulled.wasm == second, "plugin.wasm is build B");

    // Rollback: build A's manifests still get build A.
    let pulled = pull(&registry, &reference_a);
    assert_eq!(pulled.digest, sha256_a, "rolled back to A by its digest");
    assert!(pulled.wasm == first);

    // What a tag in the url would have done: the tag names B now, so a manifest of A that
    // pulled by tag would get B's digest and fail istio-agent's sha256 check.
    let by_tag = pull(&registry, "0.1.0");
    assert_eq!(
        by_tag.digest,
        b.digest(),
        "the reused tag moved to the newer build"
    );
    assert_ne!(
        by_tag.digest, sha256_a,
        "A's pin no longer matches what the tag names"
    );
    // Each build's own tag keeps its image referenced (a registry's garbage collection keeps
    // what a tag names).
    assert_eq!(
        pull(&registry, &format!("build-{}", &a.digest()[..12])).digest,
        a.digest()
    );
}
