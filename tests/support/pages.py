"""Reading server-rendered pages as a person (or a screen reader) would: forms found by their
buttons' words, fields by their labels, and a check that every field and action has a name."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx
from fastapi.testclient import TestClient

FIELDS = ("input", "select", "textarea")
NOT_TYPED_IN = ("hidden", "submit", "button")


@dataclass
class Control:
    tag: str
    attrs: dict[str, str]
    text: str = ""


@dataclass
class Form:
    action: str
    method: str
    controls: list[Control] = field(default_factory=list)


class Page(HTMLParser):
    """A page's forms, fields, labels, buttons and links."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.controls: list[Control] = []
        self.labels: dict[str, str] = {}  # for= id -> its text
        self.links: list[Control] = []
        self._open: list[Control] = []  # elements whose text is being read
        self._form: Form | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attributes: list[tuple[str, str | None]]) -> None:
        attrs = {name: value or "" for name, value in attributes}
        if tag == "form":
            self._form = Form(attrs.get("action", ""), attrs.get("method", "get").lower())
            self.forms.append(self._form)
            return
        if tag in (*FIELDS, "button", "label", "a", "option"):
            element = Control(tag, attrs)
            if tag in (*FIELDS, "button"):
                self.controls.append(element)
                if self._form is not None:
                    self._form.controls.append(element)
            if tag == "a" and "href" in attrs:
                self.links.append(element)
            if tag not in ("input",):
                self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        while self._open and self._open[-1].tag != tag:
            self._open.pop()
        if self._open:
            element = self._open.pop()
            element.text = " ".join(element.text.split())
            if tag == "label" and "for" in element.attrs:
                self.labels[element.attrs["for"]] = element.text

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data

    def unnamed(self) -> list[str]:
        """Fields without a visible label, buttons and links without words: none, on our pages."""
        problems = []
        for control in self.controls:
            typed_in = control.tag != "button" and control.attrs.get("type") not in NOT_TYPED_IN
            if typed_in and not self.labels.get(control.attrs.get("id", "")):
                problems.append(f"<{control.tag} name={control.attrs.get('name')!r}> has no label")
            if control.tag == "button" and not control.text:
                problems.append(f"a button {control.attrs} has no words")
        problems += [f"a link to {a.attrs['href']} has no words" for a in self.links if not a.text]
        return problems

    def form_with(self, button: str) -> tuple[Form, Control]:
        """The form whose button says `button`, and that button."""
        for form in self.forms:
            for control in form.controls:
                if control.tag == "button" and control.text == button:
                    return form, control
        raise AssertionError(f"no button {button!r} on the page")

    def field_named(self, label: str, form: Form) -> Control:
        for control in form.controls:
            if self.labels.get(control.attrs.get("id", "")) == label:
                return control
        raise AssertionError(f"no field labelled {label!r} in that form")


def press(
    client: TestClient,
    page: httpx.Response,
    button: str,
    labelled: dict[str, str | bool] | None = None,
) -> httpx.Response:
    """Fill in the fields of the form with `button` by their labels (True ticks a box), press
    the button, and follow where it leads."""
    html = Page(page.text)
    form, pressed = html.form_with(button)
    data: dict[str, str] = {
        c.attrs["name"]: c.attrs.get("value", "")
        for c in form.controls
        if c.tag == "input" and c.attrs.get("type") == "hidden"
    }
    for label, value in (labelled or {}).items():
        control = html.field_named(label, form)
        if value is True:
            data[control.attrs["name"]] = control.attrs.get("value", "on")
        elif value is not False:
            data[control.attrs["name"]] = str(value)
    if "name" in pressed.attrs:
        data[pressed.attrs["name"]] = pressed.attrs.get("value", "")
    response: httpx.Response = (
        client.get(form.action, params=data)
        if form.method == "get"
        else client.post(form.action, data=data, follow_redirects=True)
    )
    return response
