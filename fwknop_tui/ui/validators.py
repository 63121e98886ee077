"""Input validators: thin adapters over the wallet's own checks (nothing is validated twice)."""

from __future__ import annotations

from textual.validation import ValidationResult, Validator

from ..wallet.profiles import check_field
from ..wallet.validate import FieldError, check_profile_name
from .fields import BY_NAME, raw_value

__all__ = ["FieldValidator", "NameValidator"]


class FieldValidator(Validator):
    """Validates one profile field with ``check_field``."""

    def __init__(self, field: str) -> None:
        super().__init__()
        self.field = field

    def validate(self, value: str) -> ValidationResult:
        """Success, or the wallet's message."""
        try:
            check_field(self.field, raw_value(BY_NAME[self.field], value))
        except FieldError as exc:
            return self.failure(exc.message)
        return self.success()


class NameValidator(Validator):
    """Validates a profile name."""

    def validate(self, value: str) -> ValidationResult:
        """Success, or why the name cannot be used."""
        try:
            check_profile_name(value)
        except FieldError as exc:
            return self.failure(exc.message)
        return self.success()
