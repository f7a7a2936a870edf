"""Personas: admin-edited files that shape how the model answers.

A persona file is YAML front matter (name, description, sampling settings, access rules) followed
by a Jinja2 body that is rendered *into the user turn* (DeepSeek-R1 must get no system message).
See ``personas/*.md`` for examples.
"""

from .errors import PersonaError
from .loader import check_directory, load_persona
from .model import Access, AnswerFormat, FrontMatter, ReasoningDisplay
from .persona import Persona
from .registry import OnChange, PersonaRegistry, shipped_personas_dir
from .template import ALLOWED_VARIABLES, CONTEXT_VARIABLES

__all__ = [
    "ALLOWED_VARIABLES",
    "CONTEXT_VARIABLES",
    "Access",
    "AnswerFormat",
    "FrontMatter",
    "OnChange",
    "Persona",
    "PersonaError",
    "PersonaRegistry",
    "ReasoningDisplay",
    "check_directory",
    "load_persona",
    "shipped_personas_dir",
]
