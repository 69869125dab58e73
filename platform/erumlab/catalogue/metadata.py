"""Citations and metadata exports of a published version: text, BibTeX, DataCite, schema.org."""

from __future__ import annotations

import re
from typing import Any

from erumlab.catalogue.models import LICENCES, DatasetVersion

LICENCE_URLS = {
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "CC-BY-NC-4.0": "https://creativecommons.org/licenses/by-nc/4.0/",
    "ODbL-1.0": "https://opendatacommons.org/licenses/odbl/1-0/",
}


def _meta(version: DatasetVersion) -> dict[str, Any]:
    if not version.is_published or not version.citation:
        raise ValueError("Only published versions can be cited.")
    return version.citation


def citation_text(version: DatasetVersion) -> str:
    meta = _meta(version)
    names = "; ".join(c["name"] for c in meta["creators"])
    return (f"{names} ({meta['year']}). {meta['title']} (Version {meta['version']}) "
            f"[Data set]. {meta['publisher']}. {meta['identifier']}. {meta['url']}")


def _bibtex_escape(text: str) -> str:
    return re.sub(r"([{}\\&%$#_^~])", r"\\\1", text)


def bibtex(version: DatasetVersion) -> str:
    meta = _meta(version)
    key = re.sub(r"[^A-Za-z0-9]+", "", meta["creators"][0]["name"].split(",")[0]) or "dataset"
    key = f"{key}{meta['year']}{re.sub(r'[^a-z0-9]+', '', version.dataset.slug)}v{meta['version']}"
    fields = {
        "author": " and ".join(c["name"] for c in meta["creators"]),
        "title": meta["title"],
        "year": str(meta["year"]),
        "version": str(meta["version"]),
        "publisher": meta["publisher"],
        "howpublished": meta["identifier"],
        "url": meta["url"],
        "note": f"Licence: {meta['licence']}",
    }
    body = ",\n".join(f"  {name} = {{{_bibtex_escape(value)}}}" for name, value in fields.items())
    return f"@misc{{{key},\n{body}\n}}\n"


def _licence_name(code: str) -> str:
    return dict(LICENCES).get(code, code)


def datacite(version: DatasetVersion) -> dict[str, Any]:
    """DataCite Metadata Schema 4.x attributes (as the DataCite REST API takes them)."""
    meta = _meta(version)
    dataset = version.dataset
    creators = []
    for creator in meta["creators"]:
        entry: dict[str, Any] = {"name": creator["name"], "nameType": "Personal"}
        if creator.get("orcid"):
            entry["nameIdentifiers"] = [{
                "nameIdentifier": f"https://orcid.org/{creator['orcid']}",
                "nameIdentifierScheme": "ORCID", "schemeUri": "https://orcid.org"}]
        if creator.get("affiliation"):
            entry["affiliation"] = [{"name": creator["affiliation"]}]
        creators.append(entry)
    related = [{"relatedIdentifier": source.identifier, "relatedIdentifierType": "Handle",
                "relationType": "IsDerivedFrom"} for source in version.derived_from.all()]
    if version.number > 1:
        previous = dataset.versions.filter(number=version.number - 1).first()
        if previous is not None and previous.identifier:
            related.append({"relatedIdentifier": previous.identifier,
                            "relatedIdentifierType": "Handle", "relationType": "IsNewVersionOf"})
    rights = {"rights": _licence_name(meta["licence"]), "rightsIdentifier": meta["licence"]}
    if meta["licence"] in LICENCE_URLS:
        rights["rightsUri"] = LICENCE_URLS[meta["licence"]]
    return {
        "identifiers": [{"identifier": meta["identifier"], "identifierType": "Handle"}],
        "creators": creators,
        "titles": [{"title": meta["title"]}],
        "publisher": meta["publisher"],
        "publicationYear": meta["year"],
        "types": {"resourceTypeGeneral": "Dataset", "resourceType": dataset.get_data_level_display()},
        "subjects": [{"subject": word} for word in dataset.keywords]
                    + ([{"subject": dataset.experiment}] if dataset.experiment else []),
        "version": str(meta["version"]),
        "rightsList": [rights],
        "descriptions": [{"description": dataset.description, "descriptionType": "Abstract"}]
                        if dataset.description else [],
        "sizes": [f"{meta['size']} bytes"],
        "formats": meta["formats"],
        "relatedIdentifiers": related,
        "url": meta["url"],
        "schemaVersion": "http://datacite.org/schema/kernel-4",
    }


def schema_org(version: DatasetVersion) -> dict[str, Any]:
    """schema.org Dataset, embedded in the page as JSON-LD for search engines."""
    meta = _meta(version)
    dataset = version.dataset
    creators = []
    for creator in meta["creators"]:
        person: dict[str, Any] = {"@type": "Person", "name": creator["name"]}
        if creator.get("orcid"):
            person["@id"] = f"https://orcid.org/{creator['orcid']}"
        if creator.get("affiliation"):
            person["affiliation"] = {"@type": "Organization", "name": creator["affiliation"]}
        creators.append(person)
    return {
        "@context": "https://schema.org/",
        "@type": "Dataset",
        "name": meta["title"],
        "description": dataset.description or meta["title"],
        "identifier": meta["identifier"],
        "url": meta["url"],
        "version": str(meta["version"]),
        "creator": creators,
        "publisher": {"@type": "Organization", "name": meta["publisher"]},
        "datePublished": version.published_at.date().isoformat() if version.published_at else None,
        "license": LICENCE_URLS.get(meta["licence"], meta["licence"]),
        "keywords": dataset.keywords,
        "isAccessibleForFree": dataset.visibility == "public",
        "distribution": [
            {"@type": "DataDownload", "name": f.name, "encodingFormat": f.media_type,
             "contentSize": f"{f.size} B", "sha256": f.sha256}
            for f in version.files.all()
        ],
    }
