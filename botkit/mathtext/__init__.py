"""Math for people reading a chat: is a question mathematics (:mod:`.detect`), LaTeX as readable
Unicode text (:mod:`.unicode`), and display formulas drawn into one PNG (:mod:`.render`).

Neither Slack nor Discord renders LaTeX (facts/platforms.md §15): what the model writes as
``\\frac{a}{b}`` reaches a student as backslashes unless botkit turns it into something readable.
"""
