//! An S3-compatible server for the S3 tests: moto in server mode, with signatures checked.
//!
//! Included with `#[path = "common/moto.rs"] mod moto;` by the test files that need it (next to
//! `mod common;`), so binaries without S3 tests do not compile it.
//!
//! moto (`python3 -m moto.server`, from PyPI as `moto[server]`, which `tests/run.sh` installs
//! when missing) accepts any request unless its IAM authentication is on. Each [`Moto`] is
//! started with authentication off, creates an IAM user `fxpd` with an `s3:*` policy and an
//! access key, then turns authentication on for every later request (`POST
//! /moto-api/reset-auth` with `0`: no more unauthenticated actions). From then on moto
//! recomputes the SigV4 signature of every S3 request from the access key's secret and answers
//! `SignatureDoesNotMatch` (wrong secret) or `InvalidAccessKeyId` (unknown key) with 403.
//! [`Moto::start`] proves that before any test uses it: a boto3 request with a wrong secret and
//! one with an unknown key must both be refused, and one with the right key accepted. So a
//! server that sent no keys, or the wrong ones, cannot pass an S3 test.
//!
//! Every boto3 look at the bucket ([`Moto::s3`]) signs with the same valid key.
#![allow(dead_code)]

use crate::common::*;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts moto's server with its SigV4 check fed the request as it came over the wire. AWS
/// signs the query over its decoded parameters, each name and value URI-encoded again (so
/// `prefix=ftp/` is signed as `prefix=ftp%2F`, however the client wrote it), and the path of an
/// S3 request as sent. moto rebuilds both from its web framework's decoded and re-quoted URL,
/// so it refuses correctly signed requests: OpenDAL's listings (`/` unencoded in a query value,
/// moto pull request 5949, open) and any request for a key with `\`, `%` or `?` (boto3's own
/// too). Here the query parameters are decoded for botocore to encode as AWS does, and the path
/// is the raw request line's, either as sent (boto3 leaves `=` unencoded in keys) or in AWS's
/// canonical form, each segment decoded and URI-encoded again (OpenDAL sends `(`, `)`, `!`, `*`,
/// `'` unencoded and signs them encoded). Nothing else changes: the signature is recomputed from
/// the key's secret and must equal the one sent, which [`Moto::start`] proves with a wrong
/// secret.
const LAUNCHER: &str = r#"
import sys, urllib.parse
import flask
from moto.iam import access_control
import moto.server

Base = access_control.IAMRequestBase
_create = Base._create_aws_request

def _create_aws_request(self):
    request = _create(self)
    url = urllib.parse.urlsplit(request.url)
    if url.query:
        pairs = [pair.partition("=") for pair in url.query.split("&")]
        request.params = [(urllib.parse.unquote(k), urllib.parse.unquote(v)) for k, _, v in pairs]
    request.url = urllib.parse.urlunsplit(url._replace(path=self._wire_path, query=""))
    return request

def check_signature(self):
    sent = self._get_string_between("Signature=", ",", self._headers["Authorization"])
    raw = flask.request.environ.get("RAW_URI") or urllib.parse.urlsplit(self._path).path
    raw = urllib.parse.urlsplit(raw).path
    canonical = "/".join(urllib.parse.quote(urllib.parse.unquote(s), safe="-_.~")
                         for s in raw.split("/"))
    for path in (raw, canonical):
        self._wire_path = path
        if self._calculate_signature() == sent:
            return
    self._raise_signature_does_not_match()

Base._create_aws_request = _create_aws_request
Base.check_signature = check_signature
moto.server.main(sys.argv[1:])
"#;

/// The boto3 side: sets moto up, then looks at the bucket without fxpd.
const HELPER: &str = r#"
import os, sys, json, hashlib, urllib.request, boto3, botocore.exceptions
endpoint, cmd = sys.argv[1], sys.argv[2]
def client(service, key_id, secret):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key_id, aws_secret_access_key=secret)
if cmd == "setup":
    # Authentication is still off: any key works for these calls.
    iam = client("iam", "testing", "testing")
    iam.create_user(UserName="fxpd")
    iam.put_user_policy(UserName="fxpd", PolicyName="s3-all", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="fxpd")["AccessKey"]
    # From now on every request is authenticated and its signature checked.
    urllib.request.urlopen(urllib.request.Request(
        endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
        headers={"Content-Type": "text/plain"}), timeout=30).read()
    print(key["AccessKeyId"], key["SecretAccessKey"])
    sys.exit(0)
key_id, secret = os.environ["FXPD_S3_KEY_ID"], os.environ["FXPD_S3_SECRET"]
s3 = client("s3", key_id, secret)
bucket = sys.argv[3]
if cmd == "probe":
    # The same request with a wrong secret, with an unknown key, then with the right key.
    for label, kid, sec in [("wrong-secret", key_id, secret[:-4] + "XXXX"),
                            ("unknown-key", "AKIAUNKNOWN000000000", secret),
                            ("right-key", key_id, secret)]:
        try:
            client("s3", kid, sec).list_objects_v2(Bucket=bucket)
            print(label, "accepted")
        except botocore.exceptions.ClientError as e:
            print(label, e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
elif cmd == "mkbucket":
    s3.create_bucket(Bucket=bucket)
elif cmd == "keys":
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            print(o["Key"], o["Size"])
elif cmd == "uploads":
    r = s3.list_multipart_uploads(Bucket=bucket)
    for u in r.get("Uploads", []):
        print(u["Key"], u["UploadId"])
elif cmd == "sha256":
    body = s3.get_object(Bucket=bucket, Key=sys.argv[4])["Body"]
    h = hashlib.sha256()
    for chunk in iter(lambda: body.read(1 << 20), b""):
        h.update(chunk)
    print(h.hexdigest())
elif cmd == "put":
    s3.put_object(Bucket=bucket, Key=sys.argv[4], Body=sys.stdin.buffer.read())
"#;

/// A long-lived boto3 process for tests that look at the bucket after every step (starting
/// python for each look would cost more than the step). One command per line, answered by
/// lines and `END`; keys and bodies travel in hex.
const WATCHER: &str = r#"
import os, sys, hashlib, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id=os.environ["FXPD_S3_KEY_ID"],
                  aws_secret_access_key=os.environ["FXPD_S3_SECRET"])
def keys(bucket, prefix):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            yield o["Key"]
for line in sys.stdin:
    words = line.split()
    if words[0] == "tree":
        # tree BUCKET: every key with the SHA-256 of its body.
        for k in keys(words[1], ""):
            body = s3.get_object(Bucket=words[1], Key=k)["Body"].read()
            print(k.encode().hex(), hashlib.sha256(body).hexdigest())
    elif words[0] == "replace":
        # replace BUCKET PREFIX [KEY=BODY ...]: delete every key under PREFIX, then put these.
        bucket, prefix = words[1], bytes.fromhex(words[2]).decode()
        for k in list(keys(bucket, prefix)):
            s3.delete_object(Bucket=bucket, Key=k)
        for item in words[3:]:
            k, _, body = item.partition("=")
            s3.put_object(Bucket=bucket, Key=bytes.fromhex(k).decode(), Body=bytes.fromhex(body))
    print("END", flush=True)
"#;

/// A running [`WATCHER`]: looks at and resets a bucket quickly, with the valid key.
pub struct Watcher {
    child: Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Watcher {
    fn call(&mut self, line: &str) -> Vec<String> {
        use std::io::BufRead;
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut out = Vec::new();
        loop {
            let mut l = String::new();
            let n = self.stdout.read_line(&mut l).unwrap();
            assert!(n > 0, "the S3 watcher died on {line:?}");
            let l = l.trim_end();
            if l == "END" {
                return out;
            }
            out.push(l.to_owned());
        }
    }

    /// Every key of `bucket` with the SHA-256 of its body.
    pub fn tree(&mut self, bucket: &str) -> std::collections::BTreeMap<String, String> {
        self.call(&format!("tree {bucket}"))
            .into_iter()
            .map(|l| {
                let (k, sha) = l.split_once(' ').expect("key and hash");
                let bytes: Vec<u8> = (0..k.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&k[i..i + 2], 16).unwrap())
                    .collect();
                (String::from_utf8(bytes).unwrap(), sha.to_owned())
            })
            .collect()
    }

    /// Delete every key under `prefix` (not empty), then put `objects`.
    pub fn replace(&mut self, bucket: &str, prefix: &str, objects: &[(&str, &[u8])]) {
        assert!(!prefix.is_empty());
        let mut line = format!("replace {bucket} {}", hex(prefix.as_bytes()));
        for (key, body) in objects {
            line.push_str(&format!(" {}={}", hex(key.as_bytes()), hex(body)));
        }
        self.call(&line);
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A moto server on a free loopback port that checks signatures, stopped on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub dir: tempfile::TempDir,
    /// The access key moto made for the IAM user `fxpd`.
    pub key_id: String,
    /// Its secret: fxpd gets it in `creds.toml` and must never show it.
    pub secret: String,
}

impl Moto {
    /// Start moto with signature checks on, or `None` when the test is gated off.
    pub fn start() -> Option<Moto> {
        if !require_clients(&["python3", "curl"]) {
            return None;
        }
        let probe = Command::new("python3")
            .args(["-c", "import moto.server, boto3"])
            .output()
            .expect("run python3");
        assert!(
            probe.status.success(),
            "moto[server] not installed ({EXTERNAL_ENV}=1 makes it a failure; tests/run.sh installs it): {}",
            String::from_utf8_lossy(&probe.stderr)
        );
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        let launcher = dir.path().join("moto_server.py");
        std::fs::write(&launcher, LAUNCHER).unwrap();
        let child = Command::new("python3")
            .arg(&launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // Authentication starts off (the IAM user is made first), whatever the caller's
            // environment says.
            .env_remove("INITIAL_NO_AUTH_ACTION_COUNT")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start moto");
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            dir,
            key_id: String::new(),
            secret: String::new(),
        };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start: {}", moto.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::write(moto.dir.path().join("helper.py"), HELPER).unwrap();
        let keys = moto.s3(&["setup"], None);
        let mut keys = keys.split_whitespace();
        moto.key_id = keys.next().expect("access key id").to_owned();
        moto.secret = keys.next().expect("secret access key").to_owned();
        assert!(moto.key_id.starts_with("AKIA") && moto.secret.len() >= 20);
        moto.write_credentials("creds.toml", &moto.key_id.clone(), &moto.secret.clone());
        // Prove that this moto checks signatures before anything relies on it.
        moto.bucket("probe-auth");
        let probe = moto.s3(&["probe", "probe-auth"], None);
        assert_eq!(
            probe.lines().collect::<Vec<_>>(),
            [
                "wrong-secret SignatureDoesNotMatch 403",
                "unknown-key InvalidAccessKeyId 403",
                "right-key accepted"
            ],
            "moto must refuse a wrong signature and an unknown key; log:\n{}",
            moto.log()
        );
        Some(moto)
    }

    /// moto's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// A credentials file for `storage.credentials_file` in moto's directory; returns its path.
    pub fn write_credentials(&self, name: &str, key_id: &str, secret: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(
            &path,
            format!("access_key_id = \"{key_id}\"\nsecret_access_key = \"{secret}\"\n"),
        )
        .unwrap();
        path
    }

    /// Run the boto3 helper (signed with the valid key); returns stdout, asserting success.
    pub fn s3(&self, args: &[&str], input: Option<&[u8]>) -> String {
        let mut cmd = Command::new("python3");
        cmd.arg(self.dir.path().join("helper.py"))
            .arg(&self.endpoint)
            .args(args)
            .env("FXPD_S3_KEY_ID", &self.key_id)
            .env("FXPD_S3_SECRET", &self.secret)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if let Some(input) = input {
            stdin.write_all(input).unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "s3 helper {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn bucket(&self, name: &str) {
        self.s3(&["mkbucket", name], None);
    }

    /// Every key in the bucket, seen by S3 itself.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.s3(&["keys", bucket], None)
            .lines()
            .map(|l| l.split(' ').next().unwrap().to_owned())
            .collect()
    }

    /// A [`Watcher`] on this moto.
    pub fn watcher(&self) -> Watcher {
        let script = self.dir.path().join("watcher.py");
        std::fs::write(&script, WATCHER).unwrap();
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&self.endpoint)
            .env("FXPD_S3_KEY_ID", &self.key_id)
            .env("FXPD_S3_SECRET", &self.secret)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the S3 watcher");
        Watcher {
            stdin: child.stdin.take().unwrap(),
            stdout: std::io::BufReader::new(child.stdout.take().unwrap()),
            child,
        }
    }

    /// Pending multipart uploads (ListMultipartUploads).
    pub fn uploads(&self, bucket: &str) -> Vec<String> {
        self.s3(&["uploads", bucket], None)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The `[storage]` section for fxpd, with the valid key.
    pub fn storage_config(&self, bucket: &str) -> String {
        self.storage_config_with(bucket, &self.dir.path().join("creds.toml"))
    }

    /// The `[storage]` section for fxpd with the credentials file `creds`.
    pub fn storage_config_with(&self, bucket: &str, creds: &std::path::Path) -> String {
        format!(
            "[storage]\nkind = \"s3\"\nendpoint = \"{}\"\nbucket = \"{bucket}\"\nprefix = \"ftp\"\nallow_http = true\ncredentials_file = \"{}\"\n",
            self.endpoint,
            creds.display()
        )
    }

    /// A bucket and fxpd on it with users `alice` and `bob` (homes `alice`, `bob`, writable).
    pub fn fxpd(&self, bucket: &str) -> Server {
        self.bucket(bucket);
        // At trace level: not even the most verbose log may show the secret.
        Server::builder()
            .config(&self.storage_config(bucket))
            .config("[log]\nlevel = \"trace\"\n")
            .user("alice", PASS, "alice", true)
            .user("bob", PASS, "bob", true)
            .start()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
