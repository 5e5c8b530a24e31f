-- A version registered from an OCI package: its id is the package's manifest digest, and
-- this column holds the package facts as JSON (governance referrer digest, config digest,
-- tag), so the layout can be given back byte for byte. NULL for versions registered from a
-- plain manifest.
ALTER TABLE versions ADD COLUMN package TEXT;
