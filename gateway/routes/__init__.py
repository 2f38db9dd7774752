"""REST routes (DESIGN §5). Placeholder until the routes land."""

from fastapi import APIRouter

api_router = APIRouter()
root_router = APIRouter()
