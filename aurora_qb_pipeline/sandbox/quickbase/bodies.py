"""Request bodies and query parameters, validated with pydantic and refused in AJV's words.

Keys are camelCase on the wire and only camelCase is accepted: ``merge_field_id`` is not another
spelling of ``mergeFieldId``. Quickbase's spec closes some bodies (``additionalProperties: false``:
createField, updateField and their ``properties`` and ``permissions``, createRelationship) and
leaves the others open (upsert, runQuery, deleteRecords, deleteFields, createTable, updateTable).
A closed body with an unknown key is a 400 ``should NOT have additional properties``. For the
open ones the spec lets AJV pass unknown keys; what the service then does with them is not
documented. GUESS (sandbox strictness): the sandbox refuses them the same way unless
``QuickbaseState.refuse_unknown_body_keys`` is off, so that a misspelt key (``merge_field_id``,
which the service would at best ignore and then merge on Record ID#) fails loudly instead.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator
from pydantic.alias_generators import to_camel

from .errors import QuickbaseError, ajv_description, ajv_message


class _Body(BaseModel):
    """An open JSON body: camelCase keys only, no type coercion (AJV does none either)."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=False, validate_by_alias=True, strict=True, extra="allow"
    )


class _ClosedBody(_Body):
    """A body the spec closes with ``additionalProperties: false``."""

    model_config = ConfigDict(extra="forbid")


class _Params(BaseModel):
    """Query-string parameters: strings on the wire, so coerced ('true' -> True)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=False, extra="ignore")


# -- records -------------------------------------------------------------------------------------


class UpsertBody(_Body):
    to: str = Field(min_length=1)
    data: list[dict[str, Any]] = Field(min_length=1)
    merge_field_id: Optional[int] = None
    fields_to_return: Optional[list[int]] = None


class SortField(_Body):
    field_id: int
    order: Literal["ASC", "DESC", "equal-values"] = "ASC"


class GroupField(_Body):
    field_id: Optional[int] = None
    grouping: Optional[Literal["equal-values"]] = None


class QueryOptions(_Body):
    skip: int = Field(default=0, ge=0)
    top: Optional[int] = Field(default=None, ge=0)
    compare_with_app_local_time: bool = False


class QueryBody(_Body):
    from_: str = Field(alias="from", min_length=1)
    select: Optional[list[int]] = None
    where: Any = None  # a query string or a list of record ids: checked by .query
    sort_by: Optional[list[SortField]] = None
    group_by: Optional[list[GroupField]] = None
    options: QueryOptions = Field(default_factory=QueryOptions)

    @field_validator("sort_by", mode="before")
    @classmethod
    def _unsorted(cls, value: Any) -> Any:
        return None if value is False else value  # sortBy: false means "unsorted"


class DeleteRecordsBody(_Body):
    from_: str = Field(alias="from", min_length=1)
    where: Any


# -- fields --------------------------------------------------------------------------------------


class Permission(_ClosedBody):
    role: Optional[str] = None
    permission_type: Optional[str] = None
    role_id: Optional[int] = None


FieldType = Literal[
    "text", "text-multiple-choice", "text-multi-line", "rich-text", "numeric", "currency", "rating",
    "percent", "multitext", "email", "url", "duration", "date", "datetime", "timestamp",
    "timeofday", "checkbox", "user", "multiuser", "address", "phone", "file",
]  # fmt: skip

# The keys createField's ``properties`` accepts (closed in the spec), by JSON type.
_CREATE_PROPERTIES = {
    bool: "abbreviate allowMentions allowNewChoices appendOnly autoSave blankIsZero carryChoices "
    "defaultToday displayAsLink displayCheckboxAsText displayDayOfWeek displayRelative displayTime "
    "displayTimezone doesAverage doesTotal exact hasExtension hours24 postTempToken seeVersions "
    "sortAlpha sortAsGiven useI18NFormat useNewWindow",
    str: "appearsAs comments coverText currencyFormat currencySymbol defaultCountryCode defaultDomain "
    "defaultKind defaultValue displayEmail displayMonth displayUser formula linkText openTargetIn "
    "targetTableId targetTableName units versionMode",
    int: "commaStart decimalPlaces defaultValueLuid format maxLength maxVersions numLines numberFormat "
    "parentFieldId snapFieldId sourceFieldId targetFieldId width",
    list: "choices compositeFields",
}
# updateField's ``properties`` accepts these as well.
_UPDATE_ONLY_PROPERTIES = {
    int: "lookupReferenceFieldId lookupTargetFieldId summaryReferenceFieldId summaryTargetFieldId",
    str: "summaryFunction summaryQuery summaryTableId",
}


def _properties_model(name: str, *groups: dict[type, str]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for group in groups:
        for kind, names in group.items():
            fields.update({key: (Optional[kind], None) for key in names.split()})
    config = ConfigDict(extra="forbid", strict=True)
    return create_model(name, __config__=config, **fields)


CreateFieldProperties = _properties_model("CreateFieldProperties", _CREATE_PROPERTIES)
UpdateFieldProperties = _properties_model(
    "UpdateFieldProperties", _CREATE_PROPERTIES, _UPDATE_ONLY_PROPERTIES
)


class _FieldChanges(_ClosedBody):
    """What createField and updateField both accept."""

    field_help: Optional[str] = None
    bold: Optional[bool] = None
    no_wrap: Optional[bool] = None
    appears_by_default: Optional[bool] = None
    find_enabled: Optional[bool] = None
    audited: Optional[bool] = None
    add_to_forms: Optional[bool] = None
    permissions: Optional[list[Permission]] = None

    def changes(self) -> dict[str, Any]:
        """The given attributes, snake_case, ``properties`` as a plain dict (addToForms dropped)."""
        values = self.model_dump(exclude_unset=True, exclude={"add_to_forms", "properties"})
        properties = getattr(self, "properties", None)
        if properties is not None:
            values["properties"] = properties.model_dump(exclude_unset=True)
        return values


class CreateFieldBody(_FieldChanges):
    label: str
    field_type: FieldType  # unique/required are not accepted here: set them with updateField
    properties: Optional[CreateFieldProperties] = None  # type: ignore[valid-type]


class UpdateFieldBody(_FieldChanges):
    label: Optional[str] = None
    unique: Optional[bool] = None
    required: Optional[bool] = None
    properties: Optional[UpdateFieldProperties] = None  # type: ignore[valid-type]


class DeleteFieldsBody(_Body):
    field_ids: list[int] = Field(min_length=1)


# -- tables and relationships --------------------------------------------------------------------


class CreateTableBody(_Body):
    name: str = Field(min_length=1)
    description: Optional[str] = None
    single_record_name: Optional[str] = None
    plural_record_name: Optional[str] = None


class UpdateTableBody(_Body):
    name: Optional[str] = Field(default=None, min_length=1)
    description: Optional[str] = None
    single_record_name: Optional[str] = None
    plural_record_name: Optional[str] = None


class ForeignKeyField(_Body):
    label: Optional[str] = None


SummaryFunction = Literal[
    "AVG", "SUM", "MAX", "MIN", "STD-DEV", "COUNT", "COMBINED-TEXT", "COMBINED-USER", "DISTINCT-COUNT"
]


class SummaryFieldSpec(_Body):
    summary_fid: Optional[float] = None
    label: Optional[str] = None
    accumulation_type: SummaryFunction
    where: Optional[str] = None


class CreateRelationshipBody(_ClosedBody):
    parent_table_id: str
    foreign_key_field: Optional[ForeignKeyField] = None
    lookup_field_ids: Optional[list[int]] = None
    summary_fields: Optional[list[SummaryFieldSpec]] = None


# -- query parameters ----------------------------------------------------------------------------


class TableParams(_Params):
    table_id: str
    include_field_perms: bool = False


class AppParams(_Params):
    app_id: str


# -- validation ----------------------------------------------------------------------------------


def _unknown_key_location(value: Any, loc: tuple = ()) -> Optional[tuple]:
    """Where the first key unknown to an (open) body model sits, or None."""
    if isinstance(value, BaseModel):
        if value.__pydantic_extra__:
            return loc
        for name, info in type(value).model_fields.items():
            found = _unknown_key_location(getattr(value, name), (*loc, info.alias or name))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unknown_key_location(item, (*loc, index))
            if found is not None:
                return found
    return None


def validated(model: type[BaseModel], payload: Any, refuse_unknown_keys: bool = True) -> Any:
    """``payload`` as ``model``, or a 400 in AJV's words. With ``refuse_unknown_keys`` open bodies
    are held to the keys the spec names, as closed ones always are."""
    try:
        body = model.model_validate(payload)
    except ValidationError as exc:
        raise QuickbaseError(400, ajv_description(exc)) from None
    if refuse_unknown_keys:
        where: Optional[Sequence[Any]] = _unknown_key_location(body)
        if where is not None:
            raise QuickbaseError(400, ajv_message(where, "should NOT have additional properties"))
    return body
