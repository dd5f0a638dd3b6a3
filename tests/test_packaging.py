"""Packaging agrees with the package: version, icons, spec filters, installer, desktop file."""

from __future__ import annotations

import configparser
import importlib.util
import os
import plistlib
import re
import shutil
import stat
import struct
import subprocess
import sys
import tarfile
import time
import types
from pathlib import Path
from string import Template
from typing import Any

import pytest

import noojee_desk

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
RESOURCES = ROOT / "resources"
VERSION_LITERAL = re.compile(r"\b\d+\.\d+\.\d+\b")


def load_script(path: Path, name: str) -> types.ModuleType:
    """Import a script by path (``packaging/`` is not a package: the name is taken on PyPI)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build() -> types.ModuleType:
    return load_script(PACKAGING / "build.py", "noojee_desk_build")


# -- version ------------------------------------------------------------------------------------


def test_build_reads_the_package_version(build: types.ModuleType) -> None:
    assert build.package_version() == noojee_desk.__version__


@pytest.mark.parametrize(
    ("version", "numeric"),
    [
        ("0.1.0", "0.1.0.0"),
        ("1.2.3rc1", "1.2.3.0"),
        ("2.0", "2.0.0.0"),
        ("1.4.2+local.7", "1.4.2.0"),
    ],
)
def test_numeric_version_for_windows(build: types.ModuleType, version: str, numeric: str) -> None:
    assert build.numeric_version(version) == numeric


def test_artifact_names_carry_the_version(build: types.ModuleType) -> None:
    v = noojee_desk.__version__
    assert build.artifact_name("linux", v, "x86_64") == f"noojee-desk-{v}-linux-x86_64.tar.gz"
    assert build.artifact_name("windows", v, "x86_64") == f"noojee-desk-{v}-windows-x64-setup.exe"
    assert build.artifact_name("macos", v, "arm64") == f"noojee-desk-{v}-macos-arm64.dmg"


def test_cross_builds_are_refused(build: types.ModuleType, capsys: pytest.CaptureFixture) -> None:
    other = "windows" if build.current_target() != "windows" else "linux"
    assert build.main([f"--{other}"]) == 2
    assert "cannot cross-build" in capsys.readouterr().err


# -- the spec -----------------------------------------------------------------------------------


class SpecRun:
    """Runs packaging/noojee-desk.spec with PyInstaller's build classes replaced by recorders."""

    def __init__(self, binaries: list[tuple[str, str, str]], imports: dict[str, set[str]]):
        self.binaries = binaries
        self.imports = imports
        self.calls: dict[str, list[dict[str, Any]]] = {}
        self.analysis: Any = None

    def _recorder(self, kind: str):
        run = self

        class Recorder:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                run.calls.setdefault(kind, []).append({"args": args, **kwargs})
                self.args, self.kwargs = args, kwargs
                if kind == "Analysis":
                    self.pure: list = []
                    self.scripts: list = []
                    self.binaries = list(run.binaries)
                    self.datas = [  # PyInstaller's form: (destination file, source, kind)
                        (f"{dest}/{os.path.basename(src)}", src, "DATA")
                        for src, dest in kwargs["datas"]
                    ]
                    run.analysis = self

        return Recorder

    def execute(self, monkeypatch: pytest.MonkeyPatch, platform: str) -> dict[str, Any]:
        hooks = types.ModuleType("PyInstaller.utils.hooks")
        hooks.collect_submodules = lambda name: [f"{name}.collected"]  # type: ignore[attr-defined]
        hooks.copy_metadata = lambda name: [  # type: ignore[attr-defined]
            (f"/site/{name}.dist-info", f"{name}.dist-info")
        ]
        bindepend = types.ModuleType("PyInstaller.depend.bindepend")
        bindepend.get_imports = lambda source: {  # type: ignore[attr-defined]
            (name, None) for name in self.imports.get(source, ())
        }
        versioninfo = types.ModuleType("PyInstaller.utils.win32.versioninfo")

        def make(kind: str):
            return lambda *args, **kwargs: (kind, args, kwargs)

        versioninfo.__getattr__ = make  # type: ignore[attr-defined]
        modules = {
            "PyInstaller": types.ModuleType("PyInstaller"),
            "PyInstaller.utils": types.ModuleType("PyInstaller.utils"),
            "PyInstaller.utils.hooks": hooks,
            "PyInstaller.utils.win32": types.ModuleType("PyInstaller.utils.win32"),
            "PyInstaller.utils.win32.versioninfo": versioninfo,
            "PyInstaller.depend": types.ModuleType("PyInstaller.depend"),
            "PyInstaller.depend.bindepend": bindepend,
        }
        modules["PyInstaller.utils.win32"].versioninfo = versioninfo  # type: ignore[attr-defined]
        for name, module in modules.items():
            monkeypatch.setitem(sys.modules, name, module)
        real_platform = sys.platform
        monkeypatch.setattr(sys, "platform", platform)
        spec_globals: dict[str, Any] = {
            "__name__": "__main__",
            "SPECPATH": str(PACKAGING),
            **{k: self._recorder(k) for k in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE")},
        }
        path = PACKAGING / "noojee-desk.spec"
        try:
            exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), spec_globals)
        finally:
            monkeypatch.setattr(sys, "platform", real_platform)
        return spec_globals


QT = "PySide6/Qt"
LINUX_BINARIES = [
    (f"{QT}/plugins/platforms/libqxcb.so", "/s/libqxcb.so", "BINARY"),
    (f"{QT}/plugins/platforms/libqoffscreen.so", "/s/libqoffscreen.so", "BINARY"),
    (f"{QT}/plugins/platforms/libqwayland.so", "/s/libqwayland.so", "BINARY"),
    (f"{QT}/plugins/platforms/libqeglfs.so", "/s/libqeglfs.so", "BINARY"),
    (f"{QT}/plugins/platforms/libqminimalegl.so", "/s/libqminimalegl.so", "BINARY"),
    (f"{QT}/plugins/platforms/libqvnc.so", "/s/libqvnc.so", "BINARY"),
    (f"{QT}/plugins/platformthemes/libqgtk3.so", "/s/libqgtk3.so", "BINARY"),
    (f"{QT}/plugins/platformthemes/libqxdgdesktopportal.so", "/s/libqxdg.so", "BINARY"),
    (f"{QT}/plugins/imageformats/libqpdf.so", "/s/libqpdf.so", "BINARY"),
    (f"{QT}/plugins/imageformats/libqjpeg.so", "/s/libqjpeg.so", "BINARY"),
    (f"{QT}/plugins/imageformats/libqico.so", "/s/libqico.so", "BINARY"),
    (f"{QT}/plugins/platforminputcontexts/libqtvirtualkeyboardplugin.so", "/s/vk.so", "BINARY"),
    (f"{QT}/plugins/platforminputcontexts/libibusplatforminputcontextplugin.so", "/s/i", "BINARY"),
    (f"{QT}/plugins/generic/libqevdevmouseplugin.so", "/s/evdev.so", "BINARY"),
    (f"{QT}/lib/libQt6Gui.so.6", "/s/libQt6Gui.so.6", "BINARY"),
    (f"{QT}/lib/libQt6OpenGL.so.6", "/s/libQt6OpenGL.so.6", "BINARY"),
    (f"{QT}/lib/libQt6Pdf.so.6", "/s/libQt6Pdf.so.6", "BINARY"),
    (f"{QT}/lib/libQt6Network.so.6", "/s/libQt6Network.so.6", "BINARY"),
    ("libQt6Network.so.6", f"{QT}/lib/libQt6Network.so.6", "SYMLINK"),
    ("libQt6Pdf.so.6", f"{QT}/lib/libQt6Pdf.so.6", "SYMLINK"),
    ("libQt6Gui.so.6", f"{QT}/lib/libQt6Gui.so.6", "SYMLINK"),
    ("_cffi_backend.cpython-311-x86_64-linux-gnu.so", "/s/_cffi_backend.so", "EXTENSION"),
    ("libpython3.11.so.1.0", "/s/libpython3.11.so.1.0", "BINARY"),
    ("libfontconfig.so.1", "/usr/lib/libfontconfig.so.1", "BINARY"),
    ("libgtk-3.so.0", "/usr/lib/libgtk-3.so.0", "BINARY"),
    ("libcairo.so.2", "/usr/lib/libcairo.so.2", "BINARY"),
    ("libexpat.so.1", "/usr/lib/libexpat.so.1", "BINARY"),
]
LINUX_IMPORTS = {
    "/s/libQt6Gui.so.6": {"libfontconfig.so.1"},
    "/usr/lib/libfontconfig.so.1": {"libexpat.so.1"},  # reached through another library
    "/s/libqgtk3.so": {"libgtk-3.so.0", "libcairo.so.2"},  # left out with the GTK theme
}


@pytest.fixture
def linux_spec(monkeypatch: pytest.MonkeyPatch) -> SpecRun:
    run = SpecRun(list(LINUX_BINARIES), LINUX_IMPORTS)
    run.globals = run.execute(monkeypatch, "linux")  # type: ignore[attr-defined]
    return run


def test_spec_keeps_the_desktop_plugins_and_drops_the_rest(linux_spec: SpecRun) -> None:
    kept = {entry[0] for entry in linux_spec.analysis.binaries}
    for wanted in (
        "platforms/libqxcb.so",
        "platforms/libqoffscreen.so",
        "platforms/libqwayland.so",
        "platformthemes/libqxdgdesktopportal.so",
        "imageformats/libqjpeg.so",
        "imageformats/libqico.so",
        "platforminputcontexts/libibusplatforminputcontextplugin.so",
    ):
        assert f"{QT}/plugins/{wanted}" in kept, wanted
    for unwanted in (
        "platforms/libqeglfs.so",
        "platforms/libqminimalegl.so",
        "platforms/libqvnc.so",
        "platformthemes/libqgtk3.so",
        "imageformats/libqpdf.so",
        "platforminputcontexts/libqtvirtualkeyboardplugin.so",
        "generic/libqevdevmouseplugin.so",
    ):
        assert f"{QT}/plugins/{unwanted}" not in kept, unwanted
    assert f"{QT}/lib/libQt6Gui.so.6" in kept
    assert f"{QT}/lib/libQt6OpenGL.so.6" in kept  # the Wayland GL integration links it
    assert f"{QT}/lib/libQt6Pdf.so.6" not in kept
    assert f"{QT}/lib/libQt6Network.so.6" in kept  # the one-window check's local socket


def test_spec_prunes_libraries_only_left_out_plugins_needed(linux_spec: SpecRun) -> None:
    kept = {entry[0] for entry in linux_spec.analysis.binaries}
    assert "libfontconfig.so.1" in kept
    assert "libexpat.so.1" in kept
    assert "libgtk-3.so.0" not in kept
    assert "libcairo.so.2" not in kept
    # Never pruned: extension modules and the Python library (loaded by the bootloader).
    assert "_cffi_backend.cpython-311-x86_64-linux-gnu.so" in kept
    assert "libpython3.11.so.1.0" in kept
    # Links to left-out libraries go; links to kept ones stay.
    assert "libQt6Pdf.so.6" not in kept
    assert "libQt6Network.so.6" in kept
    assert "libQt6Gui.so.6" in kept


def test_spec_collects_keyring_metadata_and_only_the_qt_modules_used(linux_spec: SpecRun) -> None:
    (analysis,) = linux_spec.calls["Analysis"]
    assert "keyring.backends.collected" in analysis["hiddenimports"]
    assert "noojee_desk.collected" in analysis["hiddenimports"]
    destinations = {dest for _src, dest in analysis["datas"]}
    assert "keyring.dist-info" in destinations
    assert "noojee_desk/resources" in destinations
    for module in ("QtQml", "QtQuick", "QtPdf", "QtOpenGL", "QtSvg", "QtDBus"):
        assert f"PySide6.{module}" in analysis["excludes"]
    for used in ("QtCore", "QtGui", "QtWidgets", "QtNetwork"):
        assert f"PySide6.{used}" not in analysis["excludes"]
    assert "phonenumbers.geodata" in analysis["excludes"]
    (exe,) = linux_spec.calls["EXE"]
    assert exe["name"] == "noojee-desk"
    assert exe["strip"] is True
    (collect,) = linux_spec.calls["COLLECT"]
    assert collect["name"] == "noojee-desk"
    assert "BUNDLE" not in linux_spec.calls


def test_spec_on_windows_makes_a_gui_and_a_console_program(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = SpecRun([], {})
    run.execute(monkeypatch, "win32")
    gui, console = run.calls["EXE"]
    assert (gui["name"], gui["console"]) == ("noojee-desk", False)
    assert (console["name"], console["console"]) == ("noojee-desk-cli", True)
    assert gui["icon"].endswith("noojee-desk.ico")
    assert Path(gui["icon"]).is_file()
    kind, _args, info = gui["version"]
    assert kind == "VSVersionInfo"
    numbers = (*(int(n) for n in noojee_desk.__version__.split(".")[:3]), 0)
    assert info["ffi"][2]["filevers"] == numbers
    strings = repr(info["kids"])
    assert f"'ProductVersion', '{noojee_desk.__version__}'" in strings


def test_spec_on_macos_bundles_an_app_with_the_plist_template(
    monkeypatch: pytest.MonkeyPatch, build: types.ModuleType
) -> None:
    run = SpecRun([], {})
    run.execute(monkeypatch, "darwin")
    (bundle,) = run.calls["BUNDLE"]
    assert bundle["name"] == "Noojee Desk.app"
    assert bundle["bundle_identifier"] == build.BUNDLE_ID
    assert bundle["version"] == noojee_desk.__version__
    assert bundle["icon"].endswith("noojee-desk.icns")
    info = bundle["info_plist"]
    assert info["CFBundleShortVersionString"] == noojee_desk.__version__
    assert info["CFBundleIdentifier"] == build.BUNDLE_ID
    assert info["NSHighResolutionCapable"] is True
    assert re.fullmatch(r"\d+\.\d+", info["LSMinimumSystemVersion"])
    (exe,) = run.calls["EXE"]
    assert exe["console"] is False
    assert exe["entitlements_file"].endswith("entitlements.plist")


# -- macOS files --------------------------------------------------------------------------------


def test_info_plist_template_renders_with_the_version(build: types.ModuleType) -> None:
    text = (PACKAGING / "macos" / "Info.plist").read_text(encoding="utf-8")
    assert not VERSION_LITERAL.search(text), "the template must not name a version itself"
    info = plistlib.loads(
        Template(text).substitute(VERSION=noojee_desk.__version__, MIN_MACOS="12.0").encode()
    )
    assert info["CFBundleIdentifier"] == build.BUNDLE_ID
    assert info["CFBundleShortVersionString"] == noojee_desk.__version__
    assert info["CFBundleVersion"] == noojee_desk.__version__
    assert info["CFBundleName"] == noojee_desk.APP_NAME
    assert info["NSHighResolutionCapable"] is True


def test_info_plist_declares_connection_files(build: types.ModuleType) -> None:
    from noojee_desk.core.profiles.connection_file import SUFFIX

    text = (PACKAGING / "macos" / "Info.plist").read_text(encoding="utf-8")
    info = plistlib.loads(Template(text).substitute(VERSION="1.0.0", MIN_MACOS="12.0").encode())
    (kind,) = info["UTExportedTypeDeclarations"]
    assert kind["UTTypeTagSpecification"]["public.filename-extension"] == [SUFFIX.lstrip(".")]
    (document,) = info["CFBundleDocumentTypes"]
    assert document["LSItemContentTypes"] == [kind["UTTypeIdentifier"]]
    assert kind["UTTypeIdentifier"].startswith(build.BUNDLE_ID)


def test_entitlements_are_a_valid_plist() -> None:
    with (PACKAGING / "macos" / "entitlements.plist").open("rb") as handle:
        entitlements = plistlib.load(handle)
    assert entitlements["com.apple.security.cs.disable-library-validation"] is True


# -- Windows installer --------------------------------------------------------------------------


def iss_sections() -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for raw in (PACKAGING / "windows" / "noojee-desk.iss").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        sections[current].append(line)
    return sections


def test_inno_script_is_per_user_and_takes_its_version_from_the_build() -> None:
    sections = iss_sections()
    setup = dict(line.split("=", 1) for line in sections["Setup"])
    assert setup["PrivilegesRequired"] == "lowest"
    assert setup["DefaultDirName"].startswith("{autopf}")
    assert setup["AppVersion"] == "{#AppVersion}"
    assert setup["VersionInfoVersion"] == "{#AppNumericVersion}"
    assert re.fullmatch(r"\{\{[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}\}", setup["AppId"])
    assert setup["SetupIconFile"] == r"{#RepoRoot}\resources\noojee-desk.ico"
    assert setup["UninstallDisplayIcon"] == r"{app}\{#AppExe}"
    code = "\n".join(line for lines in sections.values() for line in lines)
    assert '#define AppExe "noojee-desk.exe"' in code
    assert not VERSION_LITERAL.search(code), "the script must not name a version itself"
    assert "#error AppVersion is not defined" in code


def test_inno_script_has_a_start_menu_entry_and_never_touches_user_data() -> None:
    sections = iss_sections()
    assert any(line.startswith('Name: "{autoprograms}\\{#AppName}"') for line in sections["Icons"])
    assert sections["InstallDelete"] == ['Type: filesandordirs; Name: "{app}\\_internal"']
    assert "UninstallDelete" not in sections
    text = (PACKAGING / "windows" / "noojee-desk.iss").read_text(encoding="utf-8")
    assert "{userappdata}" not in text.lower()
    # The user's folder is named once: in the uninstall step that runs only when asked.
    assert text.lower().count("{localappdata}") == 1
    step = iss_code_block(text, "procedure CurUninstallStepChanged")
    assert "(CurUninstallStep = usPostUninstall) and RemoveUserData()" in step
    assert "{localappdata}\\noojee-desk" in step


def iss_code_block(text: str, header: str) -> str:
    """One function or procedure of the [Code] section, from its header to its last ``end;``."""
    start = text.index(header)
    end = text.index("\nend;", start)
    return text[start : end + 5]


def test_inno_script_takes_the_silent_switches_and_a_per_machine_choice() -> None:
    sections = iss_sections()
    setup = dict(line.split("=", 1) for line in sections["Setup"])
    assert set(setup["PrivilegesRequiredOverridesAllowed"].split()) == {"commandline", "dialog"}
    assert setup["DefaultDirName"] == "{autopf}\\{#AppName}"  # Program Files per machine
    assert all("skipifsilent" in line for line in sections["Run"] if "postinstall" in line)
    code = "\n".join(sections["Code"])
    # /SUPPRESSMSGBOXES silences only suppressible boxes; the one MsgBox is never asked silently.
    assert code.count("SuppressibleMsgBox(") == 2
    assert code.count("MsgBox(") - code.count("SuppressibleMsgBox(") == 1
    asks = iss_code_block("\n".join(sections["Code"]), "function RemoveUserData")
    assert asks.index("UninstallSilent()") < asks.index("MsgBox(")
    deploy = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "/VERYSILENT /SUPPRESSMSGBOXES /NORESTART /ALLUSERS" in deploy
    assert "/CURRENTUSER" in deploy
    assert "/REMOVEUSERDATA" in deploy


def test_inno_script_puts_a_managed_settings_file_in_place() -> None:
    from noojee_desk.core.profiles.managed import MANAGED_NAME

    text = (PACKAGING / "windows" / "noojee-desk.iss").read_text(encoding="utf-8")
    code = "\n".join(iss_sections()["Code"])
    assert "ExpandConstant('{param:MANAGED|}')" in code
    # platformdirs' site config folder on Windows: %ProgramData%\<app name>.
    assert f"ManagedFolder = '{{commonappdata}}\\{noojee_desk.APP_NAME}';" in code
    copy = iss_code_block(text, "procedure CurStepChanged")
    assert "ssPostInstall" in copy
    assert f"'\\{MANAGED_NAME}'" in copy
    check = iss_code_block(text, "function InitializeSetup")
    assert "IsAdminInstallMode()" in check  # every user reads it: per machine only
    assert "FileExists(ManagedSource())" in check


def test_inno_script_registers_connection_files() -> None:
    from noojee_desk.core.profiles.connection_file import SUFFIX

    sections = iss_sections()
    setup = dict(line.split("=", 1) for line in sections["Setup"])
    assert setup["ChangesAssociations"] == "yes"
    registry = sections["Registry"]
    assert any(f'Subkey: "Software\\Classes\\{SUFFIX}"' in line for line in registry)
    command = next(line for line in registry if "shell\\open\\command" in line)
    assert 'ValueData: """{app}\\{#AppExe}"" --import-connection ""%1"""' in command
    assert all(line.startswith("Root: HKA;") for line in registry)  # HKLM or HKCU as installed
    assert any("uninsdeletekey" in line for line in registry)


def test_macos_build_makes_a_pkg_beside_the_dmg(build: types.ModuleType, tmp_path: Path) -> None:
    app, component, out = tmp_path / "Noojee Desk.app", tmp_path / "c.pkg", tmp_path / "o.pkg"
    first, second = build.pkg_commands(app, "1.2.3", component, out)
    assert first[0] == "pkgbuild"
    assert first[first.index("--component") + 1] == app
    assert first[first.index("--install-location") + 1] == "/Applications"
    assert first[first.index("--identifier") + 1] == build.BUNDLE_ID
    assert first[-1] == component
    assert second == ["productbuild", "--package", component, out]
    assert build.pkg_name("1.2.3", "arm64") == "noojee-desk-1.2.3-macos-arm64.pkg"
    source = (PACKAGING / "build.py").read_text(encoding="utf-8")
    wrap = source[source.index("def wrap_macos(") : source.index("def checksum(")]
    assert "wrap_macos_pkg(version)" in wrap


def test_macos_pkg_is_signed_with_the_installer_identity(
    build: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MACOS_INSTALLER_IDENTITY", "Developer ID Installer: Noojee (T)")
    _, second = build.pkg_commands(tmp_path / "a.app", "1.2.3", tmp_path / "c", tmp_path / "o")
    assert second[second.index("--sign") + 1] == "Developer ID Installer: Noojee (T)"


def test_release_workflow_checks_the_pkg_and_a_silent_windows_install() -> None:
    text = (ROOT / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")
    assert "pkgutil --expand" in text
    assert "noojee-desk-*-macos-*.pkg" in text
    assert "'/VERYSILENT','/SUPPRESSMSGBOXES','/NORESTART'" in text
    assert "--import-connection" in text
    assert "the uninstaller removed the user's data" in text
    assert "packaging/dist/noojee-desk-*" in text  # the upload takes the .pkg with the rest


def test_windows_wrap_passes_the_version_and_folders_to_inno_setup(
    build: types.ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    commands: list[list[str]] = []
    monkeypatch.setattr(build, "find_iscc", lambda: Path("ISCC.exe"))
    monkeypatch.setattr(build, "run", lambda cmd, **kw: commands.append([str(c) for c in cmd]))
    monkeypatch.delenv("WINDOWS_SIGN_CERT", raising=False)
    out = build.wrap_windows("1.4.0rc2")
    (command,) = commands
    assert command[0] == "ISCC.exe"
    assert "/DAppVersion=1.4.0rc2" in command
    assert "/DAppNumericVersion=1.4.0.0" in command
    assert f"/DSourceDir={build.bundle_dir()}" in command
    assert f"/DRepoRoot={ROOT}" in command
    assert "/DOutputBaseFilename=noojee-desk-1.4.0rc2-windows-x64-setup" in command
    assert command[-1].endswith("noojee-desk.iss")
    assert out.name == "noojee-desk-1.4.0rc2-windows-x64-setup.exe"


# -- icons --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "size"), [("noojee-desk.png", 256), ("noojee-desk-512.png", 512)])
def test_png_icons_load(qapp: Any, name: str, size: int) -> None:
    from PySide6.QtGui import QImage

    image = QImage(str(RESOURCES / name))
    assert not image.isNull()
    assert (image.width(), image.height()) == (size, size)
    assert image.hasAlphaChannel()


def test_window_icon_in_the_package_is_the_resources_png() -> None:
    packaged = ROOT / "noojee_desk" / "resources" / "noojee-desk.png"
    assert packaged.read_bytes() == (RESOURCES / "noojee-desk.png").read_bytes()


def test_ico_holds_every_size_and_qt_reads_them(qapp: Any) -> None:
    from PySide6.QtGui import QImageReader

    data = (RESOURCES / "noojee-desk.ico").read_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind) == (0, 1)
    sizes = []
    for index in range(count):
        width, _h, _c, _r, _planes, _bits, length, offset = struct.unpack_from(
            "<BBBBHHII", data, 6 + 16 * index
        )
        assert offset + length <= len(data)
        sizes.append(width or 256)
    assert sizes == [16, 20, 24, 32, 40, 48, 64, 128, 256]
    reader = QImageReader(str(RESOURCES / "noojee-desk.ico"))
    assert reader.imageCount() == count
    read = []
    for index in range(count):
        reader.jumpToImage(index)
        read.append(reader.read().width())
    assert read == sizes


def test_icns_container_holds_png_chunks_ic07_to_ic10(qapp: Any) -> None:
    from PySide6.QtGui import QImage

    data = (RESOURCES / "noojee-desk.icns").read_bytes()
    assert data[:4] == b"icns"
    assert struct.unpack(">I", data[4:8])[0] == len(data)
    chunks = {}
    offset = 8
    while offset < len(data):
        kind, length = (
            data[offset : offset + 4],
            struct.unpack(">I", data[offset + 4 : offset + 8])[0],
        )
        chunks[kind] = data[offset + 8 : offset + length]
        offset += length
    assert offset == len(data)
    assert list(chunks) == [b"ic07", b"ic08", b"ic09", b"ic10"]
    for kind, size in zip(chunks, (128, 256, 512, 1024), strict=True):
        image = QImage.fromData(chunks[kind], "PNG")
        assert (image.width(), image.height()) == (size, size), kind


def test_committed_icons_match_what_the_script_draws(qapp: Any, tmp_path: Path) -> None:
    from PySide6.QtGui import QImage

    make_icons = load_script(ROOT / "scripts" / "make_icons.py", "noojee_desk_make_icons")
    make_icons.write_all(tmp_path, None)
    for name in ("noojee-desk.png", "noojee-desk-512.png"):
        fresh = QImage(str(tmp_path / name)).convertToFormat(QImage.Format.Format_ARGB32)
        committed = QImage(str(RESOURCES / name)).convertToFormat(QImage.Format.Format_ARGB32)
        assert fresh.size() == committed.size()
        a, b = bytes(fresh.constBits()), bytes(committed.constBits())
        differing = sum(1 for x, y in zip(a, b, strict=True) if abs(x - y) > 8)
        assert differing / len(a) < 0.01, f"{name}: regenerate with scripts/make_icons.py"
    assert (tmp_path / "noojee-desk.icns").stat().st_size > 0


# -- Linux --------------------------------------------------------------------------------------


def desktop_entry(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return dict(parser["Desktop Entry"])


def test_desktop_file_names_the_program_and_its_icon() -> None:
    entry = desktop_entry(PACKAGING / "linux" / "noojee-desk.desktop")
    assert entry["Type"] == "Application"
    assert entry["Name"] == noojee_desk.APP_NAME
    assert entry["Exec"] == noojee_desk.APP_ID
    assert entry["Icon"] == noojee_desk.APP_ID
    assert entry["StartupWMClass"] == noojee_desk.APP_ID
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";")


def unquote_exec(value: str) -> str:
    """The program path of a quoted Exec value (Desktop Entry spec: string, then quoting rules)."""
    value = value.replace("\\\\", "\\")  # the string-level escape
    assert value.startswith('"')
    assert value.endswith('"')
    return re.sub(r'\\(["`$\\])', r"\1", value[1:-1])


needs_sh = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")


def unpacked_folder(where: Path) -> Path:
    where.mkdir(parents=True)
    for name in ("install.sh", "noojee-desk.desktop"):
        shutil.copy(PACKAGING / "linux" / name, where / name)
    for name in ("noojee-desk.png", "noojee-desk-512.png"):
        shutil.copy(RESOURCES / name, where / name)
    program = where / "noojee-desk"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    return where


@needs_sh
def test_install_sh_adds_and_removes_the_menu_entry(tmp_path: Path) -> None:
    folder = unpacked_folder(tmp_path / "Apps" / "it's a $HOME `x` \\ folder")
    data = tmp_path / "data"
    env = dict(os.environ, XDG_DATA_HOME=str(data))
    done = subprocess.run(
        ["sh", str(folder / "install.sh")], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    entry = desktop_entry(data / "applications" / "noojee-desk.desktop")
    assert unquote_exec(entry["Exec"]) == str(folder / "noojee-desk")
    assert "TryExec" not in entry
    assert entry["Icon"] == "noojee-desk"
    assert (data / "icons/hicolor/256x256/apps/noojee-desk.png").is_file()
    assert (data / "icons/hicolor/512x512/apps/noojee-desk.png").is_file()
    done = subprocess.run(
        ["sh", str(folder / "install.sh"), "--remove"], env=env, capture_output=True, check=False
    )
    assert done.returncode == 0
    assert not (data / "applications" / "noojee-desk.desktop").exists()
    assert not (data / "icons/hicolor/256x256/apps/noojee-desk.png").exists()


@needs_sh
def test_install_sh_refuses_a_folder_it_cannot_name(tmp_path: Path) -> None:
    folder = unpacked_folder(tmp_path / "100% sales")
    data = tmp_path / "data"
    done = subprocess.run(
        ["sh", str(folder / "install.sh")],
        env=dict(os.environ, XDG_DATA_HOME=str(data)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "contains '%'" in done.stderr
    assert not (data / "applications").exists()


def test_linux_archive_holds_the_bundle_the_desktop_file_and_the_icons(
    build: types.ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "dist" / "noojee-desk"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "noojee-desk").write_text("#!/bin/sh\n")
    (bundle / "noojee-desk").chmod(0o755)
    (bundle / "_internal" / "libfoo.so").write_bytes(b"\0")
    monkeypatch.setattr(build, "DIST", tmp_path / "dist")
    monkeypatch.setattr(build, "bundle_dir", lambda: bundle)
    out = build.wrap_linux("9.8.7")
    assert out.name == f"noojee-desk-9.8.7-linux-{build.machine()}.tar.gz"
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
    top = "noojee-desk-9.8.7"
    for name in (
        "noojee-desk",
        "_internal/libfoo.so",
        "noojee-desk.desktop",
        "install.sh",
        "noojee-desk.png",
        "noojee-desk-512.png",
    ):
        assert f"{top}/{name}" in members, name
    assert members[f"{top}/install.sh"].mode & stat.S_IXUSR
    assert members[f"{top}/noojee-desk"].mode & stat.S_IXUSR
    assert members[f"{top}/noojee-desk"].uid == 0


# -- CI and release -----------------------------------------------------------------------------


def test_release_workflow_builds_every_system_and_publishes_on_tags() -> None:
    text = (ROOT / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")
    assert "python packaging/build.py --${{ matrix.target }}" in text
    for target in ("linux", "windows", "macos"):
        assert f"target: {target}" in text
    assert 'tags: ["v*"]' in text
    assert "if: startsWith(github.ref, 'refs/tags/v')" in text
    assert "gh release create" in text


def test_ci_step_builds_and_self_tests_the_linux_bundle() -> None:
    script = ROOT / ".ci" / "build-bundle"
    assert script.stat().st_mode & stat.S_IXUSR
    text = script.read_text(encoding="utf-8")
    assert "packaging/build.py --linux" in text
    assert "--self-test" in text
    assert 'pip install --disable-pip-version-check -q -e ".[build]"' in text


# -- the build's own checks ---------------------------------------------------------------------


def fake_program(folder: Path, script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / "noojee-desk"
    program.write_text(f"#!/bin/sh\n{script}\n")
    program.chmod(0o755)
    return program


@needs_sh
def test_nothing_is_wrapped_when_the_frozen_self_test_fails(
    build: types.ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A frozen app whose self-test reports a failure the way the real one does.
    program = fake_program(
        tmp_path / "dist" / "noojee-desk",
        'for a in "$@"; do case "$a" in --report=*) r="${a#--report=}";; esac; done\n'
        'echo "FAIL  keyring round trip   no usable password store" > "$r"\nexit 1',
    )
    wrapped: list[str] = []
    monkeypatch.setattr(build, "DIST", tmp_path / "dist")
    monkeypatch.setattr(build, "frozen_programs", lambda target: [program])
    monkeypatch.setattr(build, "keyring_session_wrapper", list)
    for target in ("linux", "windows", "macos"):
        monkeypatch.setattr(build, f"wrap_{target}", lambda version: wrapped.append(version))
    assert build.main(["--skip-build"]) == 1
    assert wrapped == []
    assert not list((tmp_path / "dist").glob("metrics-*.json"))


@needs_sh
def test_a_hanging_self_test_is_ended_with_everything_it_started(build: types.ModuleType) -> None:
    started = time.monotonic()
    # The background sleep holds the output pipe open: only ending the whole group returns.
    code, _output = build.run_bounded(["sh", "-c", "sleep 60 & sleep 60"], dict(os.environ), 0.5)
    assert code is None
    assert time.monotonic() - started < 20


def test_bundles_over_the_size_budget_fail_the_build(build: types.ModuleType) -> None:
    build.check_budgets({"target": "linux", "bundle_mb": 149.9, "start_median_s": 0.5})
    with pytest.raises(build.BuildError, match="over the 150 MB budget"):
        build.check_budgets({"target": "linux", "bundle_mb": 150.1})
