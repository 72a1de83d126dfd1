import { strict as assert } from "assert";
import { backendOf, PULUMI_CLOUD_URL } from "../../config/backend";
import { isFleetError } from "../../model/errors";

const of = (url: string | undefined) => backendOf({ PULUMI_BACKEND_URL: url }, "/srv/fleet", "/home/ops");

describe("config/backend: PULUMI_BACKEND_URL as the Pulumi CLI reads it", () => {
  it("unset or empty: Pulumi Cloud, unless a `pulumi login` chose otherwise", () => {
    for (const b of [backendOf({}, "/p"), of(""), of("  ")]) {
      assert.equal(b.kind, "cloud");
      assert.equal(b.url, PULUMI_CLOUD_URL);
      assert.equal(b.fromEnv, false);
      assert.match(b.description, /last `pulumi login`/);
    }
  });

  it("https://: Pulumi Cloud, or a self-hosted one; plain http only on localhost", () => {
    assert.deepEqual(
      [of("https://api.pulumi.com").kind, of("https://api.pulumi.com/").url, of("https://api.pulumi.com").fromEnv],
      ["cloud", PULUMI_CLOUD_URL, true],
    );
    const self = of("https://pulumi.example.net/");
    assert.equal(self.url, "https://pulumi.example.net");
    assert.match(self.description, /self-hosted Pulumi Cloud at https:\/\/pulumi\.example\.net/);
    assert.match(self.locking, /one update per stack at a time/);
    assert.equal(of("http://localhost:8080").kind, "cloud");
    assert.throws(() => of("http://pulumi.example.net"), /must be https:\/\//);
  });

  it("file://: ~ is the home folder, absolute stays, relative resolves against the project folder", () => {
    assert.deepEqual([of("file://~").dir, of("file://~").url], ["/home/ops", "file:///home/ops"]);
    assert.equal(of("file://~/fleet-state").dir, "/home/ops/fleet-state");
    assert.equal(of("file:///var/lib/fleet").dir, "/var/lib/fleet");
    assert.equal(of("file:///var/lib/fleet").url, "file:///var/lib/fleet");
    const rel = of("file://./state");
    assert.equal(rel.dir, "/srv/fleet/state");
    assert.equal(rel.url, "file:///srv/fleet/state");
    assert.match(rel.description, /relative to the project folder \/srv\/fleet/);
    assert.equal(of("file://state/../other").dir, "/srv/fleet/other");
    assert.equal(of("file:///var/lib/my%20state").dir, "/var/lib/my state");
    assert.equal(of("file:///s?no_tmp_dir=false").url, "file:///s?no_tmp_dir=false", "the query is kept");
    assert.match(of("file://~").locking, /lock object per stack/);
    assert.equal(of("file://~").kind, "file");
  });

  it("file:// without a folder, or another user's home, is refused with what to write", () => {
    assert.throws(
      () => of("file://"),
      (e: unknown) => isFleetError(e) && e.kind === "config" && /file:\/\/ needs a folder: file:\/\/~/.test(e.message),
    );
    assert.throws(() => of("file://~bob/state"), /only your own home/);
  });

  it("s3://: a bucket, optionally a folder, and S3-compatible endpoints (MinIO, Hetzner)", () => {
    const aws = of("s3://fleet-state?region=eu-central-1");
    assert.deepEqual([aws.kind, aws.url, aws.fromEnv], ["s3", "s3://fleet-state?region=eu-central-1", true]);
    assert.equal(aws.description, "S3 bucket fleet-state, region eu-central-1");
    const hetzner = of("s3://fleet-state/team/fleet?region=fsn1&endpoint=fsn1.your-objectstorage.com");
    assert.equal(
      hetzner.description,
      "S3-compatible storage at fsn1.your-objectstorage.com bucket fleet-state, folder team/fleet, region fsn1",
    );
    const minio = of("s3://state?endpoint=minio.lan:9000&disableSSL=true&s3ForcePathStyle=true");
    assert.match(minio.description, /minio\.lan:9000 bucket state, region from AWS_REGION/);
    assert.match(minio.locking, /lock object per stack/);
    assert.equal(of("s3://b?endpoint=https://s3.example.com").kind, "s3");
  });

  it("s3:// without a bucket, or with an endpoint that is not a host, is refused", () => {
    assert.throws(() => of("s3://"), /s3:\/\/ needs a bucket name: s3:\/\/my-bucket\?region=/);
    assert.throws(() => of("s3://?region=fsn1"), /needs a bucket name/);
    assert.throws(() => of("s3:///folder"), /needs a bucket name/);
    assert.throws(() => of("s3://b?endpoint=not a host"), /endpoint=not a host is not a host name/);
  });

  it("gs:// and azblob:// need their bucket or container", () => {
    assert.deepEqual(
      [of("gs://fleet-state/prod").kind, of("gs://fleet-state/prod").description],
      ["gs", "Google Cloud Storage bucket fleet-state, folder prod"],
    );
    assert.equal(of("azblob://state").kind, "azblob");
    assert.match(of("azblob://state").description, /container state .*AZURE_STORAGE_ACCOUNT/);
    assert.throws(() => of("gs://"), /gs:\/\/ needs a bucket name/);
    assert.throws(() => of("azblob://"), /azblob:\/\/ needs a container name/);
  });

  it("anything else names the schemes that work", () => {
    assert.throws(
      () => of("ftp://x"),
      /unknown scheme ftp:\/\/; use https:\/\/ \(Pulumi Cloud\), s3:\/\/, gs:\/\/, azblob:\/\/ or file:\/\//,
    );
    assert.throws(() => of("/var/lib/state"), /PULUMI_BACKEND_URL=\/var\/lib\/state: not a URL/);
    assert.throws(() => of("s3:/bucket"), /not a URL/);
  });
});
