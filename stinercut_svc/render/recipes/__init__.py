"""Recipes: plain functions ``recipe(g, *streams, **params) -> Stream`` on a filter graph."""
