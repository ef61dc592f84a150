"""Serving a trained model: embeddings, scores of pairs, exact top-k, and export for a vector index."""

from ttm_jax.serving.inference import check_covariates as check_covariates
from ttm_jax.serving.inference import check_entity_ids as check_entity_ids
from ttm_jax.serving.inference import embed_items as embed_items
from ttm_jax.serving.inference import embed_users as embed_users
from ttm_jax.serving.inference import predict_pairs as predict_pairs
from ttm_jax.serving.recommend import EmbeddingTables as EmbeddingTables
from ttm_jax.serving.recommend import ItemIndex as ItemIndex
from ttm_jax.serving.recommend import Recommendations as Recommendations
from ttm_jax.serving.recommend import export_embeddings as export_embeddings
from ttm_jax.serving.recommend import index_items as index_items
from ttm_jax.serving.recommend import recommend as recommend
from ttm_jax.serving.recommend import top_k as top_k

__all__ = ["EmbeddingTables", "ItemIndex", "Recommendations", "check_covariates",
           "check_entity_ids", "embed_items",
           "embed_users", "export_embeddings", "index_items", "predict_pairs", "recommend", "top_k"]
