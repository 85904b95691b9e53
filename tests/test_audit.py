"""audit.page_problems: what a live copy must show, checked on the page as the public gets it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from syndicate.audit import Credits, page_problems
from syndicate.licenses import parse_license
from syndicate.urls import DEFAULT_STRIP_PARAMS

ORIGINAL = "https://www.easierinc.com/radical-models-of-organising/"
PERMISSION = "Republished with permission of the author."
CREDIT = "Image by Gerd Altmann from Pixabay"
CREDIT_URL = "https://pixabay.com/users/geralt-9301/"

CREDITS = Credits(original_url=ORIGINAL, site_url="https://www.easierinc.com", aliases=("easierinc.com",),
                  strip_params=DEFAULT_STRIP_PARAMS, permission_sentence=PERMISSION, license=None,
                  image_credit=CREDIT, image_credit_url=CREDIT_URL)


def page(*, byline: str = ORIGINAL, canonical: str | None = ORIGINAL, footer: str = f"<p><em>{PERMISSION}</em></p>",
         credit: str = f'<p><em>Featured Image/graphic link added by Enlivening Edge Magazine. '
                       f'<a href="{CREDIT_URL}">{CREDIT}</a></em></p>', head: str = "") -> str:
    link = f'<link rel="canonical" href="{canonical}">' if canonical is not None else ""
    return (f"<!DOCTYPE html><html><head><title>t</title>{link}{head}</head><body><article>"
            f'<p><em>By Andy Brogan and originally published on <a href="{byline}">easierinc.com</a></em></p>'
            f"<p>Body.</p>{credit}{footer}</article></body></html>")


def test_a_copy_that_credits_the_author_is_ok() -> None:
    assert page_problems(page(), CREDITS) == []


def test_each_missing_credit_is_a_problem_of_its_own() -> None:
    assert page_problems(page(byline="https://enliveningedge.org/elsewhere/"), CREDITS) == ["byline link missing"]
    assert page_problems(page(footer=""), CREDITS) == ["licence line missing"]
    assert page_problems(page(credit=""), CREDITS) == ["image credit missing"]
    assert page_problems(page(credit=f"<p>{CREDIT}</p>"), CREDITS) == ["image credit missing"]  # the link went
    assert page_problems(page(canonical=None), CREDITS) == ["canonical link missing"]
    assert page_problems(page(canonical="https://enliveningedge.org/radical-models-of-organising/"), CREDITS) == [
        "canonical points at https://enliveningedge.org/radical-models-of-organising/, not the original"]


def test_a_second_canonical_pointing_at_the_copy_is_a_problem() -> None:
    # WordPress core prints its own canonical beside a plugin's: search engines see both.
    second = '<link rel="canonical" href="https://enliveningedge.org/x/">'
    assert page_problems(page(head=second), CREDITS) == [
        "canonical points at https://enliveningedge.org/x/, not the original"]


@st.composite
def spellings(draw: st.DrawFn) -> str:
    """The original URL as a partner's CMS or editor may write it."""
    scheme = draw(st.sampled_from(["http", "https", "HTTPS"]))
    host = draw(st.sampled_from(["www.easierinc.com", "easierinc.com", "WWW.EasierInc.com", "easierinc.com."]))
    slash = draw(st.sampled_from(["/", ""]))
    params = draw(st.lists(st.sampled_from(["utm_source=x", "ref=enliveningedge.org", "fbclid=1", "utm_medium=y"]),
                           unique=True, max_size=3))
    query = ("?" + "&".join(params)) if params else ""
    fragment = draw(st.sampled_from(["", "#top"]))
    return f"{scheme}://{host}/radical-models-of-organising{slash}{query}{fragment}"


@given(spellings(), spellings())
def test_any_spelling_of_the_original_counts(byline: str, canonical: str) -> None:
    assert page_problems(page(byline=byline, canonical=canonical), CREDITS) == []


@given(st.sampled_from(["https://www.easierinc.com/radical-models-of-organising-2/",
                        "https://www.easierinc.com/", "https://easierinc.com.evil.example/radical-models-of-organising/",
                        "https://www.easierinc.com/radical-models-of-organising/?p=2",
                        "javascript:alert(1)", "", "https://[oops/"]))
def test_another_url_does_not_count(byline: str) -> None:
    assert "byline link missing" in page_problems(page(byline=byline), CREDITS)


def test_a_licence_line_needs_the_name_and_a_link_to_the_deed() -> None:
    license = parse_license("CC-BY-4.0")
    assert license is not None
    credits = Credits(original_url=ORIGINAL, site_url="https://www.easierinc.com", aliases=(),
                      strip_params=DEFAULT_STRIP_PARAMS, permission_sentence=None, license=license)
    line = (f'<p><em>Republished under <a href="{license.deed_url}">{license.title}</a> '
            f"({license.short}).</em></p>")
    assert page_problems(page(footer=line, credit=""), credits) == []
    deed_http = line.replace("https://", "http://").replace("/4.0/", "/4.0")
    assert page_problems(page(footer=deed_http, credit=""), credits) == []
    assert page_problems(page(footer=f"<p>{license.title}</p>", credit=""), credits) == ["licence line missing"]
    assert page_problems(page(footer=f'<p><a href="{license.deed_url}">CC</a></p>', credit=""), credits) == [
        "licence line missing"]
