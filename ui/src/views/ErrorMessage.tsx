import type { ErrorView } from "../state/errors";
import { AlertIcon, CloseIcon } from "./icons";

interface Props {
  error: ErrorView;
  testId?: string;
  onDismiss?: () => void;
}

/** What went wrong and what to do about it. */
export function ErrorMessage({ error, testId, onDismiss }: Props) {
  return (
    <div class="error" data-testid={testId} data-kind={error.kind} role="alert">
      <AlertIcon size={18} />
      <div class="error-text">
        {error.title && <p class="error-title">{error.title}</p>}
        {error.title && " "}
        <p class="error-message">{error.message}</p>
        {error.hint && " "}
        {error.hint && <p class="error-hint">{error.hint}</p>}
      </div>
      {onDismiss && (
        <button type="button" class="icon-button" aria-label="Dismiss" onClick={onDismiss}>
          <CloseIcon size={16} />
        </button>
      )}
    </div>
  );
}
