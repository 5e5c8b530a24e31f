//! Which ModelPack layer kind each file of a model directory becomes.
//!
//! The rules look at the path only (never the bytes), so the same directory always packs the
//! same way. Order of the checks matters: a `.json` under `data/` is a dataset, not config.

/// The five ModelPack layer kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    Weight,
    WeightConfig,
    Doc,
    Code,
    Dataset,
}

impl LayerKind {
    /// The media type of a file stored as-is (`.raw`).
    pub fn raw_media_type(self) -> &'static str {
        match self {
            LayerKind::Weight => "application/vnd.cncf.model.weight.v1.raw",
            LayerKind::WeightConfig => "application/vnd.cncf.model.weight.config.v1.raw",
            LayerKind::Doc => "application/vnd.cncf.model.doc.v1.raw",
            LayerKind::Code => "application/vnd.cncf.model.code.v1.raw",
            LayerKind::Dataset => "application/vnd.cncf.model.dataset.v1.raw",
        }
    }
}

/// Whether a layer of this media type holds weights or their configuration (sealed at rest).
pub fn is_weight_media_type(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.cncf.model.weight.")
}

const WEIGHT_EXTENSIONS: &[&str] = &[
    "onnx",
    "safetensors",
    "gguf",
    "bin",
    "pt",
    "pth",
    "ckpt",
    "h5",
    "keras",
    "pb",
    "tflite",
    "pkl",
    "joblib",
    "msgpack",
    "npz",
    "ot",
];
const CONFIG_NAMES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "mlmodel",
    "tokenizer.model",
];
const CODE_NAMES: &[&str] = &[
    "requirements.txt",
    "pyproject.toml",
    "setup.py",
    "conda.yaml",
    "python_env.yaml",
    "pipfile",
    "pipfile.lock",
    "poetry.lock",
    "uv.lock",
];
const CODE_EXTENSIONS: &[&str] = &[
    "py", "ipynb", "sh", "r", "jl", "js", "ts", "rs", "go", "java", "scala", "sql",
];
const DATA_DIRS: &[&str] = &[
    "data",
    "dataset",
    "datasets",
    "samples",
    "eval",
    "evaluation",
];
const DATA_EXTENSIONS: &[&str] = &["csv", "tsv", "jsonl", "parquet", "arrow", "avro", "feather"];
const DOC_EXTENSIONS: &[&str] = &["md", "rst", "txt", "pdf", "html", "adoc"];

/// Classifies a relative path (with `/` separators).
pub fn classify(path: &str) -> LayerKind {
    let lowered = path.to_ascii_lowercase();
    let file_name = lowered.rsplit('/').next().unwrap_or(&lowered);
    let extension = file_name.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("");
    let first_dir = lowered.split_once('/').map(|(dir, _)| dir);
    if first_dir.is_some_and(|dir| DATA_DIRS.contains(&dir)) || DATA_EXTENSIONS.contains(&extension)
    {
        return LayerKind::Dataset;
    }
    if CONFIG_NAMES.contains(&file_name) {
        return LayerKind::WeightConfig;
    }
    if WEIGHT_EXTENSIONS.contains(&extension) {
        return LayerKind::Weight;
    }
    if CODE_NAMES.contains(&file_name)
        || CODE_EXTENSIONS.contains(&extension)
        || file_name.starts_with("requirements")
    {
        return LayerKind::Code;
    }
    if first_dir == Some("docs")
        || DOC_EXTENSIONS.contains(&extension)
        || file_name.starts_with("license")
        || file_name.starts_with("readme")
    {
        return LayerKind::Doc;
    }
    // Anything else travels with the weights' configuration (e.g. `labels.json`, `.yaml`).
    LayerKind::WeightConfig
}

/// The ModelPack `config.format` implied by the weight files, if they agree on one.
pub fn weight_format(weight_paths: &[&str]) -> Option<&'static str> {
    let mut formats = weight_paths.iter().map(|path| {
        let extension = path
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .unwrap_or_default();
        match extension.as_str() {
            "onnx" => "onnx",
            "safetensors" => "safetensors",
            "gguf" => "gguf",
            "pt" | "pth" | "ckpt" | "bin" => "pytorch",
            "h5" | "keras" => "keras",
            "pb" => "tensorflow",
            "tflite" => "tflite",
            "pkl" | "joblib" => "pickle",
            _ => "other",
        }
    });
    let first = formats.next()?;
    formats.all(|format| format == first).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_layer_kinds() {
        let cases = [
            ("model.onnx", LayerKind::Weight),
            (
                "weights/model-00001-of-00002.safetensors",
                LayerKind::Weight,
            ),
            ("config.json", LayerKind::WeightConfig),
            ("tokenizer.json", LayerKind::WeightConfig),
            ("MLmodel", LayerKind::WeightConfig),
            ("labels.yaml", LayerKind::WeightConfig),
            ("README.md", LayerKind::Doc),
            ("LICENSE", LayerKind::Doc),
            ("docs/card.pdf", LayerKind::Doc),
            ("requirements.txt", LayerKind::Code),
            ("src/predict.py", LayerKind::Code),
            ("data/sample.json", LayerKind::Dataset),
            ("eval/holdout.csv", LayerKind::Dataset),
            ("reference.parquet", LayerKind::Dataset),
        ];
        for (path, kind) in cases {
            assert_eq!(classify(path), kind, "{path}");
        }
    }

    #[test]
    fn the_format_is_named_only_when_weights_agree() {
        assert_eq!(weight_format(&["a.onnx"]), Some("onnx"));
        assert_eq!(
            weight_format(&["a.safetensors", "b.safetensors"]),
            Some("safetensors")
        );
        assert_eq!(weight_format(&["a.onnx", "b.pt"]), None);
        assert_eq!(weight_format(&[]), None);
    }
}
