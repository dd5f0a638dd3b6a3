; Noojee Desk installer for Windows (Inno Setup 6.3 or newer): per user, no administrator rights.
; Built by packaging/build.py on Windows, which passes the version and the folders:
;   ISCC /DAppVersion=1.2.3 /DAppNumericVersion=1.2.3.0 /DSourceDir=... /DOutputDir=...
;        /DOutputBaseFilename=... /DRepoRoot=... packaging\windows\noojee-desk.iss
; The version has one source, noojee_desk.__version__; this script never names one itself.
;
; Upgrades: the same AppId installs over the earlier version in place. The user's queue, settings
; and logs live in %LOCALAPPDATA%\noojee-desk, outside the program folder, so neither an upgrade
; nor the uninstaller touches them.

#ifndef AppVersion
  #error AppVersion is not defined: build with packaging/build.py (ISCC /DAppVersion=...)
#endif
#ifndef AppNumericVersion
  #error AppNumericVersion is not defined: build with packaging/build.py
#endif
#ifndef RepoRoot
  #define RepoRoot AddBackslash(SourcePath) + "..\.."
#endif
#ifndef SourceDir
  #define SourceDir RepoRoot + "\packaging\dist\noojee-desk"
#endif
#ifndef OutputDir
  #define OutputDir RepoRoot + "\packaging\dist"
#endif
#ifndef OutputBaseFilename
  #define OutputBaseFilename "noojee-desk-" + AppVersion + "-windows-x64-setup"
#endif

#define AppName "Noojee Desk"
#define AppExe "noojee-desk.exe"
#define AppPublisher "Noojee"

[Setup]
; Never change AppId: it is how Windows knows a new version upgrades the installed one.
AppId={{6F3C2B8E-1D4A-4E7B-9C5F-8A2D0E6B4C17}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher={#AppPublisher}
AppPublisherURL=https://www.noojee.com.au/
AppSupportURL=https://www.noojee.com.au/
AppCopyright=Copyright (C) Noojee
VersionInfoVersion={#AppNumericVersion}
VersionInfoProductVersion={#AppNumericVersion}
VersionInfoProductTextVersion={#AppVersion}
VersionInfoDescription={#AppName} installer
; Per user: no UAC prompt, installs to %LOCALAPPDATA%\Programs\Noojee Desk.
PrivilegesRequired=lowest
DefaultDirName={autopf}\{#AppName}
DisableDirPage=auto
DisableProgramGroupPage=yes
UsePreviousAppDir=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#OutputDir}
OutputBaseFilename={#OutputBaseFilename}
SetupIconFile={#RepoRoot}\resources\noojee-desk.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
WizardStyle=modern
Compression=lzma2/max
SolidCompression=yes
; A running Noojee Desk is asked to close (its queue is saved on every change) before files are
; replaced, and is not restarted behind the person's back.
CloseApplications=yes
RestartApplications=no
SetupLogging=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; The earlier version's program files go first, so no stale library survives an upgrade.
; Only the program folder: the queue and settings in %LOCALAPPDATA%\noojee-desk stay.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{app}"; Comment: "Put leads into a Noojee PBX dialler campaign"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{app}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#StringChange(AppName, '&', '&&')}}"; Flags: nowait postinstall skipifsilent
