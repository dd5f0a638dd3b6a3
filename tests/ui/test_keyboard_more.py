"""More of the window by keyboard alone: the paste tab, the pickers reached by Ctrl+T, keys
that mean one thing wherever the focus is."""

from __future__ import annotations

import pytest
from helpers.waits import until
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPlainTextEdit
from pytestqt.qtbot import QtBot

from noojee_desk.ui.main_window import MainWindow

ROWS = "Name\tPhone\nAnn Able\t0412 345 111\nBob Baker\t412345222\n"


async def open_demo(window: MainWindow) -> None:
    window.activateWindow()
    await window.start(demo=True)
    await until(lambda: window.form.target_ready, what="template, campaign and allocation")
    await until(lambda: window.focusWidget() is not None, what="a focus")


@pytest.mark.asyncio
async def test_alt_2_puts_the_focus_in_the_grid_and_ctrl_v_pastes(
    window: MainWindow, qtbot: QtBot
) -> None:
    await open_demo(window)
    QGuiApplication.clipboard().setText(ROWS)
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_2, Qt.KeyboardModifier.AltModifier)
    assert window.entry_tabs.currentWidget() is window.grid
    assert window.focusWidget() is window.grid.view
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    await until(lambda: window.grid.model.rowCount() == 2, what="the rows pasted")
    # And back: Alt+1 to the form's first field.
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_1, Qt.KeyboardModifier.AltModifier)
    assert window.entry_tabs.currentWidget() is window.form
    assert window.focusWidget() is window.form.first_field()


@pytest.mark.asyncio
async def test_paste_leads_from_the_menu_leaves_the_focus_in_the_grid(
    window: MainWindow, qtbot: QtBot
) -> None:
    await open_demo(window)
    QGuiApplication.clipboard().setText(ROWS)
    QTest.keyClick(
        window.focusWidget(),
        Qt.Key.Key_V,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    await until(lambda: window.grid.model.rowCount() == 2, what="the rows pasted")
    assert window.focusWidget() is window.grid.view


@pytest.mark.asyncio
async def test_a_tab_chosen_on_the_tab_bar_keeps_the_focus_there(
    window: MainWindow, qtbot: QtBot
) -> None:
    """Arrows on the focused tab bar move between the tabs, as anywhere else."""
    await open_demo(window)
    bar = window.entry_tabs.tabBar()
    bar.setFocus(Qt.FocusReason.TabFocusReason)
    QTest.keyClick(bar, Qt.Key.Key_Right)
    assert window.entry_tabs.currentWidget() is window.grid
    assert window.focusWidget() is bar


@pytest.mark.asyncio
async def test_apply_all_fixes_key_works_in_the_grid(window: MainWindow, qtbot: QtBot) -> None:
    """Ctrl+Shift+F in the grid applies every suggested fix (not an ambiguous key)."""
    await open_demo(window)
    QGuiApplication.clipboard().setText(ROWS)
    window.act_paste.trigger()
    await until(lambda: window.grid.model.rowCount() == 2, what="the rows pasted")
    await until(lambda: window.grid.problems.rowCount() > 0, what="a problem with a fix")
    window.grid.view.setFocus()
    assert window.grid.grid_actions.fix_all.isEnabled()
    QTest.keyClick(
        window.grid.view,
        Qt.Key.Key_F,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    await until(lambda: window.grid.problems.rowCount() == 0, what="the fix applied")
    assert getattr(window, "layout_dialog", None) is None  # not Template fields as well


@pytest.mark.asyncio
async def test_tab_moves_between_the_pickers_once_ctrl_t_reached_them(
    window: MainWindow, qtbot: QtBot
) -> None:
    await open_demo(window)
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    pickers = window.pickers

    def inside(box) -> bool:
        focus = window.focusWidget()
        return focus is box or box.isAncestorOf(focus)

    assert inside(pickers.template)
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_Tab)
    assert inside(pickers.campaign)
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_Tab)
    assert inside(pickers.allocation)
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_Tab)
    assert window.focusWidget() is pickers.refresh
    # Out of the pickers, to the form: Shift+Tab from the first field passes them by again.
    window.form.focus_first()
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_Backtab)
    assert not any(inside(box) for box in pickers.boxes)


@pytest.mark.asyncio
async def test_the_shortcuts_page_lists_the_grids_keys(window: MainWindow, qtbot: QtBot) -> None:
    await open_demo(window)
    window.act_keys.trigger()
    rows = {(where, what) for where, what, _keys in window.shortcuts_dialog.rows}
    window.shortcuts_dialog.close()
    for what in (
        "Apply the suggested fix",
        "Apply all suggested fixes",
        "Go to the problems",
        "Queue leads",
        "Edit the current cell",
        "Move between cells",
    ):
        assert ("Paste many", what) in rows, what
    assert ("Queue", "Search the queue") in rows


def test_no_key_means_two_things_where_the_focus_can_be(window: MainWindow) -> None:
    """A key bound twice is ambiguous (Qt then does neither) unless the two actions work in
    separate parts of the window (the form's Ctrl+Enter and the grid's)."""
    from PySide6.QtGui import QAction, QKeySequence

    def owners(act: QAction) -> list[object]:
        return list(act.associatedObjects())

    seen: dict[str, list[QAction]] = {}
    for act in window.findChildren(QAction):
        for key in act.shortcuts():
            seen.setdefault(key.toString(QKeySequence.SequenceFormat.PortableText), []).append(act)
    for key, acts in seen.items():
        acts = list({id(a): a for a in acts}.values())
        if len(acts) < 2:
            continue
        for act in acts:
            # Each must be limited to its own widgets, and no two share a widget's subtree.
            assert act.shortcutContext() != Qt.ShortcutContext.WindowShortcut or all(
                other is act for other in acts
            ), f"{key}: {[a.text() for a in acts]}"


@pytest.mark.asyncio
async def test_emptying_the_template_empties_the_pickers_below_it(
    window: MainWindow, qtbot: QtBot
) -> None:
    await open_demo(window)
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    line = window.pickers.template.lineEdit()
    QTest.keyClick(line, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(line, Qt.Key.Key_Backspace)
    QTest.keyClick(line, Qt.Key.Key_Return)
    assert window.pickers.target() is None
    assert window.pickers.campaign.currentText() == ""
    assert window.pickers.allocation.currentText() == ""  # not the old campaign's list
    assert "Choose a template" in window.form.summary.text()


@pytest.mark.asyncio
async def test_an_id_typed_in_a_picker_shows_the_name_it_has(
    window: MainWindow, qtbot: QtBot
) -> None:
    await open_demo(window)
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    line = window.pickers.template.lineEdit()
    QTest.keyClick(line, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(line, "3")
    QTest.keyClick(line, Qt.Key.Key_Return)
    assert window.pickers.template.currentText() == "Home Loans  (#3)"
    assert window.pickers.template.current_id() == 3


@pytest.mark.asyncio
async def test_ctrl_f_then_down_reaches_the_queues_rows(window: MainWindow, qtbot: QtBot) -> None:
    await open_demo(window)
    QTest.keyClicks(window.focusWidget(), "Kim Keyboard")
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_Tab)
    QTest.keyClicks(window.focusWidget(), "03 7010 5555")
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    await until(lambda: window.queue_model.rowCount() == 1, what="the lead in the queue")
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.focusWidget() is window.queue_view.search
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_Down)
    assert window.focusWidget() is window.queue_view.table
    assert window.queue_view.table.currentIndex().row() == 0
    # Ctrl+I: the lead's details, its batch named as the queue names it.
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    await until(lambda: getattr(window, "details_dialog", None) is not None, what="details")
    text = window.details_dialog.findChild(QPlainTextEdit).toPlainText()
    window.details_dialog.close()
    assert "Batch 1: Keyed in (" in text


@pytest.mark.asyncio
async def test_alt_1_on_the_form_tab_brings_the_focus_back_to_the_form(
    window: MainWindow, qtbot: QtBot
) -> None:
    """From the queue's search (the form's tab still shown), Alt+1 goes to the first field."""
    await open_demo(window)
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.focusWidget() is window.queue_view.search
    QTest.keyClick(window.focusWidget(), Qt.Key.Key_1, Qt.KeyboardModifier.AltModifier)
    await until(lambda: window.focusWidget() is window.form.first_field(), limit=3, what="form")
