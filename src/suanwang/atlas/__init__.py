"""数纽 hubs: the national dataset of provinces, hubs, clusters, sites and cities, with sources."""

from suanwang.atlas.loader import Atlas, load_atlas
from suanwang.atlas.model import Hub, Place, Province, Site

__all__ = ["Atlas", "Hub", "Place", "Province", "Site", "load_atlas"]
