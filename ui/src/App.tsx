import { appInfo, fatal, room } from "./state/store";
import { ErrorMessage } from "./views/ErrorMessage";
import { Spinner } from "./views/icons";
import { Lobby } from "./views/Lobby";
import { Room } from "./views/Room";

export function App() {
  if (fatal.value) {
    return (
      <main class="fatal">
        <ErrorMessage error={fatal.value} testId="lobby-error" />
      </main>
    );
  }
  if (!appInfo.value) {
    return (
      <main class="starting" aria-busy="true">
        <Spinner size={28} />
      </main>
    );
  }
  return room.value.view === "room" ? <Room /> : <Lobby />;
}
