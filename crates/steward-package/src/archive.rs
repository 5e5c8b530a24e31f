//! The single-file form of a package: its OCI image layout as a tar archive, as skopeo's
//! `oci-archive:` transport reads it.
//!
//! Invariants:
//! - Reproducible: the same layout gives the same bytes (entries in byte order of path,
//!   times 0, owner 0:0, modes 0644 and 0755, no user or group names).
//! - Extraction takes only what a layout holds (`oci-layout`, `index.json`, `blobs/`,
//!   `blobs/sha256/<64 hex digits>`), regular files and folders only, within a size limit;
//!   anything else is refused by name before it is written.

use std::io::Read;
use std::path::Path;

use crate::{FILES_MAX, PackError, io};

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Writes the layout at `layout` as a tar archive at `out` (which must not exist).
pub fn write_archive(layout: &Path, out: &Path) -> Result<(), PackError> {
    if out.exists() {
        return Err(PackError::OutputExists(out.to_owned()));
    }
    let blobs_dir = layout.join("blobs").join("sha256");
    let mut blobs: Vec<String> = std::fs::read_dir(&blobs_dir)
        .map_err(io(&blobs_dir))?
        .map(|entry| {
            entry
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .map_err(io(&blobs_dir))
        })
        .collect::<Result<_, _>>()?;
    blobs.sort();
    let temp = out.with_extension("tar.partial");
    let file = std::fs::File::create(&temp).map_err(io(&temp))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    let append_file = |builder: &mut tar::Builder<_>, name: &str, path: &Path| {
        let source = std::fs::File::open(path).map_err(io(path))?;
        let size = source.metadata().map_err(io(path))?.len();
        let mut header = header(tar::EntryType::Regular, size, 0o644);
        builder
            .append_data(&mut header, name, source)
            .map_err(io(&temp))
    };
    // Byte order of path: `blobs/` < `blobs/sha256/` < `blobs/sha256/…` < `index.json` < `oci-layout`.
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut header = header(tar::EntryType::Directory, 0, 0o755);
        builder
            .append_data(&mut header, dir, std::io::empty())
            .map_err(io(&temp))?;
    }
    for blob in &blobs {
        append_file(
            &mut builder,
            &format!("blobs/sha256/{blob}"),
            &blobs_dir.join(blob),
        )?;
    }
    for name in ["index.json", "oci-layout"] {
        append_file(&mut builder, name, &layout.join(name))?;
    }
    let writer = builder.into_inner().map_err(io(&temp))?;
    let file = writer.into_inner().map_err(|err| PackError::Io {
        path: temp.clone(),
        source: err.into_error(),
    })?;
    file.sync_all().map_err(io(&temp))?;
    std::fs::rename(&temp, out).map_err(io(out))
}

fn allowed(name: &str) -> bool {
    matches!(name, "oci-layout" | "index.json" | "blobs" | "blobs/sha256")
        || name.strip_prefix("blobs/sha256/").is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Unpacks an archive written by `write_archive` (or skopeo) into the empty folder `into`.
pub fn extract_archive(archive: &Path, into: &Path, bytes_max: u64) -> Result<(), PackError> {
    let file = std::fs::File::open(archive).map_err(io(archive))?;
    let mut reader = tar::Archive::new(std::io::BufReader::new(file));
    std::fs::create_dir_all(into.join("blobs").join("sha256")).map_err(io(into))?;
    let mut total = 0u64;
    let mut count = 0usize;
    for entry in reader.entries().map_err(io(archive))? {
        let mut entry = entry.map_err(io(archive))?;
        count += 1;
        if count > FILES_MAX {
            return Err(PackError::TooManyFiles);
        }
        let raw = entry
            .path()
            .map_err(io(archive))?
            .to_string_lossy()
            .into_owned();
        let name = raw
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned();
        if name.is_empty() || name == "." {
            continue;
        }
        let bad = |why: &str| PackError::BadArchive(format!("entry `{raw}` {why}"));
        if !allowed(&name) {
            return Err(bad("is not part of an OCI image layout"));
        }
        match entry.header().entry_type() {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular => {}
            _ => return Err(bad("is not a regular file")),
        }
        if matches!(name.as_str(), "blobs" | "blobs/sha256") {
            return Err(bad("should be a folder"));
        }
        total += entry.size();
        if total > bytes_max {
            return Err(PackError::BadArchive(format!(
                "the archive holds more than {bytes_max} bytes"
            )));
        }
        let path = into.join(&name);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut limited = (&mut entry).take(bytes_max);
        std::io::copy(&mut limited, &mut out).map_err(io(&path))?;
    }
    for required in ["oci-layout", "index.json"] {
        if !into.join(required).is_file() {
            return Err(PackError::BadArchive(format!(
                "the archive has no `{required}`; it is not an OCI image layout"
            )));
        }
    }
    Ok(())
}
