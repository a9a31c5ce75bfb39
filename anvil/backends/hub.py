"""Downloads from the Hugging Face Hub, into its own cache: a model's snapshot and a dataset repo's file.
An offline lookup finds what an earlier download left there without asking the network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anvil.errors import AnvilError

MODEL_FILES = ["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt"]


def snapshot(repo: str, revision: str | None, offline: bool = False) -> tuple[Path, str]:
    """The local snapshot folder of a model repo and the commit it is at (downloaded unless `offline`)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo, revision=revision, allow_patterns=MODEL_FILES, local_files_only=offline))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        raise AnvilError(
            f"hf:{repo}: cannot download the weights ({type(e).__name__}). Offline, download them elsewhere "
            f'(`hf download {repo} --local-dir DIR`), copy DIR here and use source = "path:DIR"'
        ) from None
    return folder, folder.name  # the snapshot folder is named after its commit


def dataset_file(where: str, shown_as: str) -> Path:
    """A file of a dataset repo (`ORG/NAME/FILE`), downloaded into the Hugging Face cache once."""
    org, name, filename = where.split("/", 2)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(f"{org}/{name}", filename, repo_type="dataset"))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        raise AnvilError(
            f"{shown_as}: cannot download the benchmark rows ({type(e).__name__}). Offline, download the file "
            f"elsewhere (`hf download --repo-type dataset {org}/{name} {filename}`), copy it here "
            f'and use data = "path:FILE"'
        ) from None


def card_text(meta: dict[str, Any], body: str) -> str:
    """A model card: the metadata (release/card.py's `Metadata`, as a dict) as YAML front matter, written by
    huggingface_hub's own serialiser (as the Hub parses it back: `ModelCard.load`), then the body."""
    from huggingface_hub import EvalResult, ModelCardData

    results = [EvalResult(task_type="text-generation", **r) for r in meta["results"]]
    related = {"base_model_relation": meta["relation"]} if meta["base_model"] and meta["relation"] else {}
    data = ModelCardData(
        model_name=meta["model"],
        license=meta["license"],
        base_model=meta["base_model"],
        library_name="mlx",
        tags=meta["tags"],
        eval_results=results or None,
        **related,
    )
    return f"---\n{data.to_yaml()}\n---\n\n{body}"


def push(folder: Path, repo: str) -> str:
    """Uploads a release folder to a model repo of the Hub (created if missing); its URL. The token is
    huggingface_hub's: HF_TOKEN, or what `hf auth login` stored."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo, repo_type="model", exist_ok=True)
        commit = api.upload_folder(folder_path=folder, repo_id=repo, repo_type="model")
    except Exception as e:  # HTTP errors, no network (httpx's own), a bad token or repo id: all one message
        raise AnvilError(
            f"--push {repo}: the upload failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            f"the folder is written at {folder}. Set HF_TOKEN (a token with write access) or run `hf auth login`, "
            "then push again, or upload the folder with `hf upload`"
        ) from None
    return str(getattr(commit, "repo_url", f"https://huggingface.co/{repo}"))
