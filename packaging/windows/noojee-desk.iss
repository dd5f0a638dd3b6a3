; Noojee Desk installer for Windows (Inno Setup 6.3 or newer): per user, no administrator rights,
; unless /ALLUSERS (or the first page's choice) installs it for every user of the computer.
; Built by packaging/build.py on Windows, which passes the version and the folders:
;   ISCC /DAppVersion=1.2.3 /DAppNumericVersion=1.2.3.0 /DSourceDir=... /DOutputDir=...
;        /DOutputBaseFilename=... /DRepoRoot=... packaging\windows\noojee-desk.iss
; The version has one source, noojee_desk.__version__; this script never names one itself.
;
; Upgrades: the same AppId installs over the earlier version in place. The user's queue, settings
; and logs live in %LOCALAPPDATA%\noojee-desk, outside the program folder, so neither an upgrade
; nor the uninstaller touches them, unless the uninstaller is asked to (/REMOVEUSERDATA, or Yes
; to its question when it is not silent).
;
; Deploying to many desks (docs/deploy.md):
;   noojee-desk-...-setup.exe /VERYSILENT /SUPPRESSMSGBOXES /NORESTART /ALLUSERS /MANAGED=C:\it\managed.json
; /VERYSILENT /SUPPRESSMSGBOXES /NORESTART are Inno Setup's own; /ALLUSERS or /CURRENTUSER picks
; per machine or per user; /MANAGED=path copies a managed settings file to
; %ProgramData%\Noojee Desk\managed.json (per machine only: it is read by every user).

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
; Per user: no UAC prompt, installs to %LOCALAPPDATA%\Programs\Noojee Desk. /ALLUSERS on the
; command line (or the choice on the first page) installs per machine, to Program Files.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=commandline dialog
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
; The .noojee connection files open in Noojee Desk (see [Registry]).
ChangesAssociations=yes

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

[Registry]
; A double-click on a .noojee connection file adds the connection (noojee-desk --import-connection).
; HKA: HKLM per machine, HKCU per user. Removed again by the uninstaller.
Root: HKA; Subkey: "Software\Classes\.noojee"; ValueType: string; ValueName: ""; ValueData: "NoojeeDesk.Connection"; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.noojee"; ValueType: string; ValueName: "Content Type"; ValueData: "application/x-noojee-desk-connection"; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\NoojeeDesk.Connection"; ValueType: string; ValueName: ""; ValueData: "Noojee Desk connection"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\NoojeeDesk.Connection\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"
Root: HKA; Subkey: "Software\Classes\NoojeeDesk.Connection\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" --import-connection ""%1"""

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#StringChange(AppName, '&', '&&')}}"; Flags: nowait postinstall skipifsilent

[Code]
const
  ManagedFolder = '{commonappdata}\Noojee Desk';

// /MANAGED=path: the managed settings file to put in place (docs/deploy.md gives its schema).
function ManagedSource(): String;
begin
  Result := ExpandConstant('{param:MANAGED|}');
end;

function InitializeSetup(): Boolean;
begin
  Result := True;
  if ManagedSource() = '' then
    Exit;
  if not FileExists(ManagedSource()) then
  begin
    SuppressibleMsgBox('The managed settings file ' + ManagedSource() + ' does not exist.',
      mbCriticalError, MB_OK, IDOK);
    Result := False;
  end
  else if not IsAdminInstallMode() then
  begin
    SuppressibleMsgBox('/MANAGED needs a per-machine install: add /ALLUSERS and run the ' +
      'installer as an administrator.', mbCriticalError, MB_OK, IDOK);
    Result := False;
  end;
end;

procedure CurStepChanged(CurStep: TSetupStep);
var
  Folder: String;
begin
  if (CurStep = ssPostInstall) and (ManagedSource() <> '') then
  begin
    Folder := ExpandConstant(ManagedFolder);
    ForceDirectories(Folder);
    if not FileCopy(ManagedSource(), Folder + '\managed.json', False) then
      RaiseException('The managed settings file could not be copied to ' + Folder);
    Log('Managed settings copied from ' + ManagedSource() + ' to ' + Folder);
  end;
end;

// Whether the command line holds the switch Name (e.g. /REMOVEUSERDATA), in any case.
function HasSwitch(Name: String): Boolean;
var
  I: Integer;
begin
  Result := False;
  for I := 1 to ParamCount() do
    if CompareText(ParamStr(I), Name) = 0 then
      Result := True;
end;

// The user's queue, settings and logs stay unless /REMOVEUSERDATA is given (or, when not
// silent, the person answers Yes). Per machine, that is the data of the user who uninstalls.
// The managed file stays: it belongs to IT.
function RemoveUserData(): Boolean;
begin
  if HasSwitch('/REMOVEUSERDATA') then
    Result := True
  else if UninstallSilent() then
    Result := False
  else
    Result := MsgBox('Also remove your queue, settings and logs from this computer? ' +
      'Leads still queued would be lost.', mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if (CurUninstallStep = usPostUninstall) and RemoveUserData() then
    DelTree(ExpandConstant('{localappdata}\noojee-desk'), True, True, True);
end;
