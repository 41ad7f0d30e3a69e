"""The ``none`` backend: silent, each utterance lasts its estimated duration."""

from __future__ import annotations

from assist.speech.backends.base import SpeechBackend, Utterance


class NoneBackend(SpeechBackend):
    """Speaks nothing: each utterance takes its estimated duration (interruptible),
    so a headless log shows what a listener would have heard and when."""

    name = "none"

    def describe(self) -> str:
        """One line for the status event."""
        return "none (silent: speech is logged with estimated durations)"

    def _speak(self, utt: Utterance) -> None:
        if self.wav_dir is not None:
            self.save_wav(utt)
        utt.cancel.wait(self.estimate_duration(utt.text))
