"""The page of `nfrec serve`, driven in a real headless browser (Debian's chromium
and chromedriver): search -> rate -> recommendations, and a known user's history
beside their recommendations, each equal to the signature's own answer."""

import os

import pytest
import tensorflow as tf

from nfrec import contracts
from tests.conftest import KNOWN, MOVIES, USERS
from tests.nfrec.serving.conftest import running_server

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
  not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
  reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
  "chromium-driver; .ci/run installs them)",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
  from selenium import webdriver
  from selenium.webdriver.chrome.service import Service

  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for flag in (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    # This machine has no internet: no background connections, no component updates.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
  ):
    options.add_argument(flag)
  driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
  driver.implicitly_wait(0)
  yield driver
  driver.quit()


@pytest.fixture(scope="module")
def page(served_base_path):
  with running_server(served_base_path) as (url, _):
    yield url


def _wait_for(browser, css: str, count: int | None = None, timeout: float = 20):
  from selenium.webdriver.common.by import By
  from selenium.webdriver.support.ui import WebDriverWait

  def found(driver):
    elements = driver.find_elements(By.CSS_SELECTOR, css)
    return elements if elements and (count is None or len(elements) == count) else False

  return WebDriverWait(browser, timeout).until(found)


def _rate(browser, query: str, year: int, stars: int):
  """Searches a title and rates the result of the given year."""
  from selenium.common.exceptions import StaleElementReferenceException
  from selenium.webdriver.common.by import By
  from selenium.webdriver.support.ui import Select, WebDriverWait

  search = browser.find_element(By.ID, "search")
  search.clear()
  search.send_keys(query)

  def result_of_the_year(driver):  # the list shows the last query's results once they arrive
    for result in driver.find_elements(By.CSS_SELECTOR, "#results li"):
      if query.casefold() in result.text.casefold() and f"({year})" in result.text:
        return result
    return False

  for _ in range(5):  # a search answered late may redraw the list under the click: retry
    try:
      result = WebDriverWait(browser, 20).until(result_of_the_year)
      movie_id = result.get_attribute("data-movie-id")
      Select(result.find_element(By.CSS_SELECTOR, "select.stars")).select_by_value(str(stars))
      result.find_element(By.CSS_SELECTOR, "button.rate").click()
      return movie_id
    except StaleElementReferenceException:
      continue
  raise AssertionError(f"could not rate {query} ({year})")


def test_search_rate_and_get_recommendations(browser, page, served_base_path):
  from selenium.webdriver.common.by import By

  browser.get(page + "/")
  # Ambiguous titles are shown with their years: two movies are called Hamlet.
  browser.find_element(By.ID, "search").send_keys("hamlet")
  assert sorted(r.text.split(")")[0] for r in _wait_for(browser, "#results li", 2)) == [
    "Hamlet (1948",
    "Hamlet (1996",
  ]
  heat = _rate(browser, "Heat", 1995, 5)
  hamlet = _rate(browser, "hamlet", 1996, 2)
  rated = _wait_for(browser, "#my-ratings li", 2)
  assert [r.get_attribute("data-movie-id") for r in rated] == [heat, hamlet]

  browser.find_element(By.ID, "recommend").click()
  shown = [li.get_attribute("data-movie-id") for li in _wait_for(browser, "#recommendations li")]

  signature = tf.saved_model.load(f"{served_base_path}/1").signatures[
    contracts.SIGNATURE_RECOMMEND_FROM_RATINGS
  ]
  expected = signature(
    movie_ids=tf.constant([[heat, hamlet, ""]]), ratings=tf.constant([[5.0, 2.0, 0.0]])
  )["movie_ids"][0].numpy()
  assert shown == [m.decode() for m in expected if m]
  assert heat not in shown and hamlet not in shown
  assert "for your 2 ratings" in browser.find_element(By.ID, "new-status").text


def test_a_known_users_history_beside_their_recommendations(browser, page, served_base_path):
  from selenium.webdriver.common.by import By

  browser.get(page + "/")
  # The example users are links; the first is the most active user.
  _wait_for(browser, "#example-users a")[0].click()
  history = [li.get_attribute("data-movie-id") for li in _wait_for(browser, "#history li")]
  assert history == [MOVIES[m] for m in KNOWN.movie[KNOWN.user == 0]]
  shown = [
    li.get_attribute("data-movie-id") for li in _wait_for(browser, "#user-recommendations li")
  ]
  signature = tf.saved_model.load(f"{served_base_path}/1").signatures[contracts.SIGNATURE_RECOMMEND]
  expected = signature(user_id=tf.constant([USERS[0]]))["movie_ids"][0].numpy()
  assert shown == [m.decode() for m in expected if m]
  assert browser.find_element(By.ID, "user-id").get_attribute("value") == USERS[0]

  # Someone the model does not know gets the popular list, and the page says so.
  field = browser.find_element(By.ID, "user-id")
  field.clear()
  field.send_keys("nobody")
  browser.find_element(By.ID, "lookup-user").click()
  _wait_for(browser, "#user-recommendations li")
  status = browser.find_element(By.ID, "user-status")
  assert "most popular" in status.text
  assert browser.find_elements(By.CSS_SELECTOR, "#history li") == []


def test_no_browser_console_errors(browser, page):
  browser.get(page + "/")
  _wait_for(browser, "#example-users a")
  errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
  assert errors == [], errors
